import assert from 'node:assert/strict';
import { test } from 'vitest';
import { ServiceError as TemporalServiceError } from '@temporalio/client';
import { isUnavailable } from '../../api/unavailable';

// What the API answers 503 loyalty_unavailable (retry later with the same key) and what stays a 500
// (a bug: retrying the same request would fail again).
const pgError = (code: string, message = 'pg') => Object.assign(new Error(message), { code });
const grpcError = (code: number, message: string) =>
  Object.assign(new Error(message), { code, details: message, metadata: {} });

test('PostgreSQL or Temporal not answering is unavailable, anywhere in the cause chain', () => {
  for (const e of [
    pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
    pgError('57P01', 'terminating connection due to administrator command'),
    pgError('08006', 'connection failure'),
    pgError('53300', 'too many clients'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    new TemporalServiceError('Failed to signal workflow', { cause: grpcError(14, 'tcp connect error') }),
    new TemporalServiceError('Failed to start workflow', { cause: grpcError(4, 'deadline exceeded') }),
    new Error('outer', { cause: new Error('middle', { cause: pgError('ECONNRESET') }) }),
  ]) {
    assert.equal(isUnavailable(e), true, e.message);
  }
});

test('errors that would happen again are not', () => {
  for (const e of [
    pgError('08P01', 'bind message supplies 1 parameters, but prepared statement requires 2'),
    pgError('23505', 'duplicate key value'),
    pgError('42P01', 'relation does not exist'),
    new TemporalServiceError('Failed to start workflow', {
      cause: grpcError(8, 'received message larger than max (5000000 vs. 4194304)'),
    }),
    new TemporalServiceError('Failed to start workflow', { cause: grpcError(3, 'invalid argument') }),
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    'a string',
    null,
  ]) {
    assert.equal(isUnavailable(e), false, String(e instanceof Error ? e.message : e));
  }
});
