import { ServiceError as TemporalServiceError, isGrpcServiceError } from '@temporalio/client';

// gRPC status codes that say "the server did not answer", not "the server said no".
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;

// Node's socket errors, and PostgreSQL's SQLSTATEs for a server that is going or not there yet:
// the connection exceptions of class 08 (not 08P01, a protocol violation: a bug, not an outage),
// 57P01-57P03 (admin or crash shutdown, cannot connect now), 53300 (too many connections).
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const PG_UNAVAILABLE = new Set(['08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300']);
// RESOURCE_EXHAUSTED is also the client's own "message larger than max": the same request fails again
const GRPC_TOO_LARGE = /larger than max/i;
// node-postgres says these in words, with no code
const PG_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/;

/**
 * Whether an error means that PostgreSQL or Temporal did not answer (down, restarting, overloaded),
 * anywhere in its cause chain. The API answers those 503 loyalty_unavailable: a client that sends
 * the same request again with the same Idempotency-Key gets it done once, later.
 */
export function isUnavailable(err: unknown): boolean {
  for (
    let e: unknown = err, depth = 0;
    e && typeof e === 'object' && depth < 8;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (SOCKET_CODES.has(code) || PG_UNAVAILABLE.has(code))) return true;
    if (isGrpcServiceError(e) && [GRPC_UNAVAILABLE, GRPC_DEADLINE_EXCEEDED, GRPC_RESOURCE_EXHAUSTED].includes(e.code)) {
      return !(e.code === GRPC_RESOURCE_EXHAUSTED && GRPC_TOO_LARGE.test(e.message));
    }
    if (e instanceof Error && !(e instanceof TemporalServiceError) && PG_MESSAGES.test(e.message)) return true;
  }
  return false;
}
