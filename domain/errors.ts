/** An error the API answers with: a stable code, an HTTP status, and details a client can act on. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string, details: Record<string, unknown>) =>
  new ApiError(404, 'not_found', `${what} not found`, details);

export const validationFailed = (message: string, details: Record<string, unknown> = {}) =>
  new ApiError(400, 'validation_failed', message, details);

/**
 * What a 5xx answer may carry in its details: numbers and booleans (retryAfterMs), never text, which
 * could be a driver's or a server's own message (host names, SQL, a stack). The whole error is in
 * the log line the answer points to.
 */
export function detailsFor5xx(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean'));
}
