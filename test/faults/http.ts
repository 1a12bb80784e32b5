/**
 * How billing calls the ledger: every request is sent again with the same Idempotency-Key and the
 * same body after a connection error, a timeout or a 5xx/429 (and after Retry-After on a 409
 * idempotency_request_in_progress), until the ledger accepts it (2xx) or refuses it for good (4xx),
 * within a bounded number of attempts and a bounded time.
 */
import { sleep, type Rng } from './rng';

export type Verdict = 'accepted' | 'refused' | 'unresolved';

export interface Answer {
  verdict: Verdict;
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  replayed: boolean;
  attempts: number;
  /** an earlier attempt may have reached the ledger (connection cut, timeout, 5xx): its effect is not known */
  ambiguous: boolean;
  lastError: string | null;
}

export interface Budget {
  attemptTimeoutMs: number;
  maxAttempts: number;
  /** from the first attempt */
  totalMs: number;
}

export const DEFAULT_BUDGET: Budget = { attemptTimeoutMs: 20_000, maxAttempts: 80, totalMs: 150_000 };
/** The API answers a redemption once the saga has decided, which takes longer under faults. */
export const REDEMPTION_BUDGET: Budget = { attemptTimeoutMs: 60_000, maxAttempts: 80, totalMs: 170_000 };

const retryableStatus = (s: number) => s >= 500 || s === 429 || s === 408;

/** How long to wait before sending again a request the ledger answered "in progress", else null. */
function inProgressRetryAfterMs(status: number, body: unknown, retryAfter: string | null): number | null {
  if (
    status !== 409 ||
    (body as { error?: { code?: string } } | null)?.error?.code !== 'idempotency_request_in_progress'
  )
    return null;
  const seconds = Number(retryAfter);
  return (Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) : 1) * 1000;
}

export class LedgerClient {
  constructor(
    private readonly baseUrl: string,
    private readonly keys: Record<'billing' | 'support' | 'admin', string>,
  ) {}

  async post(
    path: string,
    o: {
      role: 'billing' | 'support' | 'admin';
      idem: string;
      body: unknown;
      rng: Rng;
      budget?: Budget;
      onRetry?: () => void;
    },
  ): Promise<Answer> {
    return this.send('POST', path, o);
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    o: {
      role: 'billing' | 'support' | 'admin';
      idem: string | null;
      body: unknown;
      rng: Rng;
      budget?: Budget;
      onRetry?: () => void;
    },
  ): Promise<Answer> {
    const budget = o.budget ?? DEFAULT_BUDGET;
    const started = Date.now();
    const headers: Record<string, string> = { authorization: `Bearer ${this.keys[o.role]}` };
    if (o.idem) headers['idempotency-key'] = o.idem;
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let ambiguous = false;
    let lastError: string | null = null;
    let status = 0;
    let body: unknown = null;
    for (let attempt = 1; attempt <= budget.maxAttempts; attempt++) {
      try {
        const res = await fetch(this.baseUrl + path, {
          method,
          headers,
          body: payload,
          signal: AbortSignal.timeout(budget.attemptTimeoutMs),
        });
        const text = await res.text();
        status = res.status;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        // the ledger's "a request with this key is in progress" (its answer lost, or still at work):
        // billing sends it again after Retry-After, as docs/api.md asks, within the same budget
        const retryAfterMs = inProgressRetryAfterMs(status, body, res.headers.get('retry-after'));
        if (retryAfterMs !== null) {
          lastError = `${status} idempotency_request_in_progress`;
          ambiguous = true;
          if (Date.now() + retryAfterMs - started > budget.totalMs) break;
          o.onRetry?.();
          await sleep(retryAfterMs);
          continue;
        }
        if (!retryableStatus(status)) {
          return {
            verdict: status < 400 ? 'accepted' : 'refused',
            status,
            body,
            replayed: res.headers.get('idempotent-replayed') === 'true',
            attempts: attempt,
            ambiguous,
            lastError,
          };
        }
        lastError = `${status} ${(body as { error?: { code?: string } } | null)?.error?.code ?? ''}`.trim();
      } catch (e) {
        lastError =
          (e as Error).name === 'TimeoutError' ? `no answer in ${budget.attemptTimeoutMs} ms` : (e as Error).message;
        status = 0;
      }
      ambiguous = true;
      const waitMs = Math.min(4000, 150 * 1.6 ** (attempt - 1)) * (0.5 + o.rng.next());
      if (Date.now() + waitMs - started > budget.totalMs) break;
      o.onRetry?.();
      await sleep(waitMs);
    }
    return { verdict: 'unresolved', status, body, replayed: false, attempts: budget.maxAttempts, ambiguous, lastError };
  }
}

/** Calls to a simulator made by the suite in billing's place (creating invoices, reading credits). */
export async function simCall(
  url: string,
  method: 'GET' | 'POST',
  body: unknown,
  idem: string | null,
  rng: Rng,
  totalMs = 60_000,
): Promise<unknown> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    let error: string;
    try {
      const res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(5000),
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(idem ? { 'idempotency-key': idem } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (res.ok) return JSON.parse(text);
      if (!retryableStatus(res.status))
        throw Object.assign(new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`), { final: true });
      error = `${res.status}`;
    } catch (e) {
      if ((e as { final?: boolean }).final) throw e;
      error = (e as Error).message;
    }
    if (Date.now() - started > totalMs) throw new Error(`${method} ${url}: no answer within ${totalMs} ms (${error})`);
    await sleep(Math.min(2000, 100 * 1.6 ** attempt) * (0.5 + rng.next()));
  }
}
