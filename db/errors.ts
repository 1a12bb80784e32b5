import { ApiError } from '../domain/errors';

interface PgErrorLike {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

/**
 * SQLSTATEs of data out of range (class 22): a value the database cannot hold or convert. The
 * schemas bound every input first; what gets past them (a product of amounts and rates past bigint
 * or numeric(38), a date past PostgreSQL's range) is still bad input, answered 4xx with a stable
 * code, never 500 (issue 14, item 7). The transaction has rolled back: nothing was written.
 */
const OUT_OF_RANGE: Record<string, { code: string; message: string }> = {
  '22003': { code: 'amount_out_of_range', message: 'a number is out of the range the ledger can hold' },
  '22P02': { code: 'validation_failed', message: 'a value is not of its type' },
  '22008': { code: 'validation_failed', message: 'a date or time is out of the range the ledger can hold' },
  '22009': { code: 'validation_failed', message: 'a time zone offset is out of the range the ledger can hold' },
  '22007': { code: 'validation_failed', message: 'a date or time is malformed' },
  '22001': { code: 'validation_failed', message: 'a text is longer than the ledger holds' },
  '22012': { code: 'amount_out_of_range', message: 'a computation divided by zero' },
};

/**
 * Business errors raised by the SQL functions (SQLSTATE LL400) become the API's errors, and so do
 * values out of range (OUT_OF_RANGE: 422, or 400 for a malformed value).
 */
export function fromDbError(e: PgErrorLike): ApiError | null {
  const range = e.code ? OUT_OF_RANGE[e.code] : undefined;
  if (range) return new ApiError(range.code === 'validation_failed' ? 400 : 422, range.code, range.message, {});
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
