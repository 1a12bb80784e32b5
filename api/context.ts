import type { Pool } from 'pg';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApiError } from '../domain/errors';
import type { Logger } from 'pino';
import type { AccrualBatcher } from './accrual-batcher';
import type { Authenticator, requireRole } from './auth';
import type { ProgramCache } from './program-cache';

/** What route handlers may use: the database, the program cache, auth, the accrual batcher. */
export interface ApiContext {
  pool: Pool;
  /** where the report and liability reads run (their own few connections and statement timeout; else `pool`) */
  reportPool: Pool;
  /** how long a request waits on a workflow's answer before answering 202 with where to poll */
  workflowWaitMs: number;
  programs: ProgramCache;
  auth: Authenticator;
  requireRole: typeof requireRole;
  accruals: AccrualBatcher;
  log: Logger;
  metrics: import('./metrics').ApiMetrics;
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
  if (!ctx.temporal)
    throw new ApiError(503, 'loyalty_unavailable', `${what} runs on Temporal, which this API is not connected to`);
  return ctx.temporal;
}

/**
 * A workflow update's refusal (its validator threw an ApplicationFailure with a code) as the API's
 * error: 403 for segregation of duties, else 409. A workflow that has already ended (a rejected rule
 * change, a decided adjustment: the update arrived just after its last step) is the same 409, not a
 * 500. Anything else is rethrown as it is.
 */
export function rethrowUpdateRefusal(e: unknown, fallbackCode: string): never {
  if (e instanceof WorkflowNotFoundError) throw new ApiError(409, fallbackCode, 'the workflow has already ended');
  if (e instanceof WorkflowUpdateFailedError) {
    const cause = e.cause as (Error & { type?: string }) | undefined;
    const code = cause?.type ?? fallbackCode;
    throw new ApiError(code === 'segregation_of_duties' ? 403 : 409, code, cause?.message ?? e.message);
  }
  throw e;
}

/**
 * A workflow's answer if it comes within `ms`, else null (the request then answers 202 with where
 * to poll). The answer arriving later, or failing, is dropped: the workflow's own record is what
 * the poll reads.
 */
export async function answerWithin<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  try {
    return await Promise.race([
      p,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => {
          late = true;
          resolve(null);
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (late) p.catch(() => undefined);
  }
}

/** The 202 of a request whose workflow did not answer in time: not stored, so the same request sent again answers what it is then. */
export function stillRunning(workflowId: string, poll: string, extra: Record<string, unknown> = {}) {
  return { status: 202, body: { status: 'in_progress', ...extra, workflowId, poll }, keep: false };
}
