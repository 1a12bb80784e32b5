import type { Pool } from 'pg';
import { ApiError } from '../domain/errors';
import type { Logger } from 'pino';
import type { AccrualBatcher } from './accrual-batcher';
import type { Authenticator, requireRole } from './auth';
import type { ProgramCache } from './program-cache';

/** What route handlers may use: the database, the program cache, auth, the accrual batcher. */
export interface ApiContext {
  pool: Pool;
  programs: ProgramCache;
  auth: Authenticator;
  requireRole: typeof requireRole;
  accruals: AccrualBatcher;
  log: Logger;
  /** Reports whether Temporal answers (for /readyz); the API itself never waits on Temporal for writes. */
  temporalReachable: () => Promise<boolean>;
  /** for redemptions: the saga runs on Temporal (accruals never need it) */
  temporal?: {
    client: import('@temporalio/client').Client;
    taskQueue: string;
    /** how long a proposed close waits for approval before it escalates, then cancels (default P3D, P7D) */
    closeApproval?: { escalateAfter: string; cancelAfter: string };
  };
}

/** The Temporal client, or 503 when this API runs without one (the accrual path never needs it). */
export function requireTemporal(ctx: ApiContext, what: string): NonNullable<ApiContext['temporal']> {
  if (!ctx.temporal) throw new ApiError(503, 'loyalty_unavailable', `${what} runs on Temporal, which this API is not connected to`);
  return ctx.temporal;
}
