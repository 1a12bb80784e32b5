/**
 * The correlation id that follows one request: the API's `x-correlation-id` (given by the caller or
 * made up), a Temporal header on the workflows and activities it starts, and the same HTTP header
 * on the calls to billing, GL and tax; every log line on the way carries it.
 */
export const CORRELATION_HTTP_HEADER = 'x-correlation-id';
/** the Temporal header key (workflow and activity headers) */
export const CORRELATION_TEMPORAL_HEADER = 'correlation-id';
/** what a caller may send; anything else is replaced by a fresh id rather than refused */
export const CORRELATION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
