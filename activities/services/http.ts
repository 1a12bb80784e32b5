import { CORRELATION_HTTP_HEADER } from '../../domain/correlation';
import { currentCorrelationId } from '../../temporal/correlation';

/**
 * What the adapters to billing, GL and tax share: JSON over HTTP, an Idempotency-Key on every
 * call, a timeout on every call, and errors classified as retryable or not.
 */
export class ServiceError extends Error {
  constructor(
    readonly service: string,
    readonly operation: string,
    /** HTTP status; 0 for a network error or a timeout */
    readonly status: number,
    readonly code: string,
    message: string,
    /** worth trying again with the same key: timeouts, network errors, 408, 429, 5xx */
    readonly retryable: boolean,
  ) {
    super(`${service} ${operation}: ${message}`);
    this.name = 'ServiceError';
  }
}

export interface ServiceClientOptions {
  service: string;
  baseUrl: string;
  /** per call */
  timeoutMs: number;
}

export function isRetryableStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export async function callService<T>(
  o: ServiceClientOptions,
  operation: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  idempotencyKey: string | null,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
  const correlationId = currentCorrelationId();
  if (correlationId) headers[CORRELATION_HTTP_HEADER] = correlationId;
  let res: Response;
  try {
    res = await fetch(new URL(path, o.baseUrl), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (e) {
    const timedOut = (e as Error).name === 'TimeoutError';
    throw new ServiceError(
      o.service,
      operation,
      0,
      timedOut ? 'timeout' : 'network_error',
      timedOut ? `no answer within ${o.timeoutMs} ms` : (e as Error).message,
      true,
    );
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ServiceError(
      o.service,
      operation,
      res.status,
      err?.code ?? `http_${res.status}`,
      err?.message ?? text.slice(0, 200),
      isRetryableStatus(res.status),
    );
  }
  return parsed as T;
}
