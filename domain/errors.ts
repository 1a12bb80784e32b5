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
