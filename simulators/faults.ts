import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/**
 * Fault injection, per operation: fail the next N calls, fail a share of calls (seeded, so a run
 * reproduces), add latency, or time out (hold the request until the client gives up).
 */
export interface FaultRule {
  failNext: number;
  failRate: number;
  latencyMs: number;
  timeoutNext: number;
  /** HTTP status of an injected failure (5xx by default: retryable) */
  failStatus: number;
}

const ruleSchema = z
  .object({
    operation: z.string().min(1).max(64),
    failNext: z.number().int().min(0).max(1_000_000).optional(),
    failRate: z.number().min(0).max(1).optional(),
    latencyMs: z.number().int().min(0).max(60_000).optional(),
    timeoutNext: z.number().int().min(0).max(1_000_000).optional(),
    failStatus: z.number().int().min(400).max(599).optional(),
    seed: z.number().int().optional(),
  })
  .strict();

/** How long a "timed out" call is held before the simulator answers anyway (clients give up first). */
const TIMEOUT_HOLD_MS = 30_000;

export class FaultInjector {
  private rules = new Map<string, FaultRule>();
  private state: number;
  injected = 0;
  /** calls slowed by a latency rule */
  delayed = 0;

  constructor(seed = 1) {
    this.state = seed >>> 0 || 1;
  }

  set(operation: string, rule: Partial<FaultRule>, seed?: number): FaultRule {
    if (seed !== undefined) this.state = seed >>> 0 || 1;
    const merged = {
      failNext: 0,
      failRate: 0,
      latencyMs: 0,
      timeoutNext: 0,
      failStatus: 503,
      ...this.rules.get(operation),
      ...rule,
    };
    this.rules.set(operation, merged);
    return merged;
  }

  clear(): void {
    this.rules.clear();
  }

  list(): Record<string, FaultRule> {
    return Object.fromEntries(this.rules);
  }

  /** xorshift32: deterministic for a given seed */
  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x1_0000_0000;
  }

  /** Applies the operation's faults; answers the request itself (returns true) when it failed it. */
  async apply(operation: string, reply: FastifyReply): Promise<boolean> {
    const r = this.rules.get(operation);
    if (!r) return false;
    if (r.latencyMs > 0) {
      // counted when the latency is taken, not when the request arrived: a test that clears the
      // faults once N calls were slowed knows the Nth really was
      this.delayed++;
      await sleep(r.latencyMs);
    }
    if (r.timeoutNext > 0) {
      r.timeoutNext--;
      this.injected++;
      await sleep(TIMEOUT_HOLD_MS);
      await reply
        .status(504)
        .send({ error: { code: 'injected_timeout', message: `injected timeout on ${operation}` } });
      return true;
    }
    const fail = r.failNext > 0 || (r.failRate > 0 && this.random() < r.failRate);
    if (!fail) return false;
    if (r.failNext > 0) r.failNext--;
    this.injected++;
    await reply
      .status(r.failStatus)
      .send({ error: { code: 'injected_failure', message: `injected failure on ${operation}` } });
    return true;
  }

  /** The admin endpoints: POST/GET/DELETE /admin/faults. */
  register(app: FastifyInstance): void {
    app.post('/admin/faults', async (req: FastifyRequest, reply) => {
      const parsed = ruleSchema.safeParse(req.body);
      if (!parsed.success) {
        return reply.status(400).send({
          error: {
            code: 'validation_failed',
            message: 'invalid fault rule',
            details: { issues: parsed.error.issues },
          },
        });
      }
      const { operation, seed, ...rule } = parsed.data;
      return { operation, rule: this.set(operation, rule, seed) };
    });
    app.get('/admin/faults', async () => ({ rules: this.list(), injected: this.injected, delayed: this.delayed }));
    app.delete('/admin/faults', async () => {
      this.clear();
      return { rules: {} };
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
