import { ApiError } from '../domain/errors';

interface PgErrorLike {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** Business errors raised by the SQL functions (SQLSTATE LL400) become the API's errors. */
export function fromDbError(e: PgErrorLike): ApiError | null {
  if (e.code !== 'LL400') return null;
  let body: { message?: string; details?: Record<string, unknown> } = {};
  try {
    body = JSON.parse(e.detail ?? '{}') as typeof body;
  } catch {
    /* keep the defaults */
  }
  return new ApiError(Number(e.hint ?? 400), e.message, body.message ?? e.message, body.details ?? {});
}

/** Errors worth running the whole transaction again for. */
export function isRetryable(e: PgErrorLike): boolean {
  return e.code === '40P01' || e.code === '40001' || e.code === '55P03';
}

export function rethrowAsApiError(e: unknown): never {
  const api = fromDbError(e as PgErrorLike);
  throw api ?? e;
}
