/**
 * The webhook relay (docs/api.md, "Webhooks"): delivers the deliveries that ll_emit_event wrote in
 * the transactions of their changes. Leases like the wake-up relay's (db/webhooks.ts claimDeliveries):
 * several workers' relays share the table, one delivery per (webhook, member) queue is in flight at
 * a time, and a delivery whose relay died is taken again once its lease runs out. At least once: a
 * delivery is marked delivered only after its 2xx, so a crash between the two sends it again (the
 * same Loyalty-Event-Id; receivers dedupe). The clock is injectable so that tests can pass the 24 h
 * horizon without waiting for it.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import {
  claimDeliveries,
  emitExpiringSoon,
  recordAttempts,
  releaseDeliveries,
  type AttemptOutcome,
  type ClaimedDelivery,
} from '../db/webhooks';
import { retryDelayMs, signatureHeader, WEBHOOK_LIMITS, type WebhookPayload } from '../domain/webhooks';
import { keepAliveAgents, postWebhook } from './webhook-deliverer';

export interface WebhookRelayOptions {
  pool: Pool;
  log: Logger;
  /** the relay's notion of now: scheduling, leases, the horizon (tests move it); signatures use the real time */
  clock?: () => Date;
  /** per attempt (default WEBHOOK_LIMITS.attemptTimeoutMs, 10 s) */
  timeoutMs?: number;
  /** allow loopback and private targets (LOYALTY_WEBHOOK_ALLOW_PRIVATE=1: tests, npm start) */
  allowPrivate: boolean;
  /** deliveries leased per round */
  batchSize?: number;
  /** attempts in flight at once */
  concurrency?: number;
  /** pause when nothing is due */
  idleMs?: number;
  /** how often deadlines are scanned for points.expiring_soon */
  expiringSoonEveryMs?: number;
  /** jitter's source, [0, 1) */
  random?: () => number;
  /** the first retry's delay and the cap (WEBHOOK_LIMITS: 5 s, 1 h); tests shorten the first */
  firstRetryMs?: number;
  maxRetryMs?: number;
}

/** The relay's settings from the environment (`loyalty worker`, npm start). */
export function webhookRelaySettings(env: NodeJS.ProcessEnv): Pick<WebhookRelayOptions, 'allowPrivate' | 'timeoutMs'> {
  const timeout = env.LOYALTY_WEBHOOK_TIMEOUT_MS
    ? Number(env.LOYALTY_WEBHOOK_TIMEOUT_MS)
    : WEBHOOK_LIMITS.attemptTimeoutMs;
  if (!Number.isInteger(timeout) || timeout < 100 || timeout > WEBHOOK_LIMITS.attemptTimeoutMs)
    throw new Error(`LOYALTY_WEBHOOK_TIMEOUT_MS must be an integer from 100 to ${WEBHOOK_LIMITS.attemptTimeoutMs}`);
  return { allowPrivate: env.LOYALTY_WEBHOOK_ALLOW_PRIVATE === '1', timeoutMs: timeout };
}

export class WebhookRelay {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastScan = 0;
  /** attempts made, and those that counted */
  attempts = 0;
  delivered = 0;
  private readonly clock: () => Date;
  private readonly timeoutMs: number;
  /** a lease outlives an attempt: another relay takes a delivery over only when this one is gone */
  private readonly leaseSeconds: number;
  /** kept-alive connections to receivers (a receiver that closed one costs that attempt, retried) */
  private readonly agents = keepAliveAgents();

  constructor(private readonly o: WebhookRelayOptions) {
    this.clock = o.clock ?? (() => new Date());
    this.timeoutMs = o.timeoutMs ?? WEBHOOK_LIMITS.attemptTimeoutMs;
    this.leaseSeconds = Math.ceil((2 * this.timeoutMs) / 1000) + 5;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.loop = null;
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async run(): Promise<void> {
    let backoffMs = this.o.idleMs ?? 200;
    while (!this.stopped) {
      try {
        await this.scanDeadlines();
        const batch = await claimDeliveries(this.o.pool, this.clock(), this.o.batchSize ?? 100, this.leaseSeconds);
        if (batch.length === 0) {
          await sleep(this.o.idleMs ?? 200);
          continue;
        }
        await this.deliverAll(batch);
        backoffMs = this.o.idleMs ?? 200;
      } catch (e) {
        // the database away: try again later; leases taken run out by themselves
        this.o.log.warn({ err: (e as Error).message, backoffMs }, 'webhook relay: will retry');
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  private async scanDeadlines(): Promise<void> {
    const every = this.o.expiringSoonEveryMs ?? 60_000;
    if (Date.now() - this.lastScan < every) return;
    this.lastScan = Date.now();
    const n = await emitExpiringSoon(this.o.pool, this.clock(), 1000);
    if (n > 0) this.o.log.info({ events: n }, 'points.expiring_soon recorded');
  }

  private async deliverAll(batch: ClaimedDelivery[]): Promise<void> {
    let next = 0;
    const unused: ClaimedDelivery[] = [];
    // outcomes are recorded a few at a time (one statement each), so that a slow receiver in the
    // batch does not hold back the record, and the next delivery, of the others
    let outcomes: AttemptOutcome[] = [];
    const flush = async () => {
      const chunk = outcomes;
      outcomes = [];
      const statuses = await recordAttempts(this.o.pool, chunk);
      for (const o of chunk) {
        const status = statuses.get(o.deliveryId);
        if (status === 'delivered') this.delivered++;
        else if (status === 'failed')
          this.o.log.warn({ deliveryId: o.deliveryId }, 'webhook delivery failed after its retry horizon');
        else if (status === undefined)
          this.o.log.info(
            { deliveryId: o.deliveryId },
            'webhook lease lost before the attempt was recorded: another relay sends it',
          );
      }
    };
    const worker = async () => {
      while (next < batch.length) {
        const d = batch[next++]!;
        if (this.stopped) {
          unused.push(d);
          continue;
        }
        // awaited first: `outcomes.push(await ...)` would read `outcomes` before the await, and push
        // into a chunk another lane has already flushed (its attempt never recorded, its lease left)
        const outcome = await this.attempt(d);
        outcomes.push(outcome);
        if (outcomes.length >= FLUSH_EVERY) await flush();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency ?? 16, batch.length) }, worker));
    await flush();
    await releaseDeliveries(this.o.pool, unused);
  }

  private async attempt(d: ClaimedDelivery): Promise<AttemptOutcome> {
    const payload: WebhookPayload = {
      id: d.event.id,
      type: d.event.type,
      occurredAt: d.event.occurredAt.toISOString(),
      programId: d.event.programId,
      data: d.event.data,
    };
    const body = JSON.stringify(payload);
    const startedAt = this.clock();
    const result = await postWebhook(
      d.url,
      body,
      {
        'loyalty-event-id': d.event.id,
        'loyalty-event-type': d.event.type,
        'loyalty-signature': signatureHeader(body, d.secrets, Math.floor(Date.now() / 1000)),
        'user-agent': 'loyalty-ledger-webhooks/1',
      },
      {
        timeoutMs: this.timeoutMs,
        allowPrivate: this.o.allowPrivate,
        maxBodyBytes: WEBHOOK_LIMITS.responseBodyBytes,
        agent: this.agents,
      },
    );
    this.attempts++;
    const delay = retryDelayMs(
      d.attempts + 1,
      (this.o.random ?? Math.random)(),
      this.o.firstRetryMs,
      this.o.maxRetryMs,
    );
    return {
      deliveryId: d.deliveryId,
      leaseToken: d.leaseToken,
      startedAt,
      durationMs: result.durationMs,
      ok: result.ok,
      statusCode: result.statusCode,
      error: result.error,
      nextAttemptAt: new Date(startedAt.getTime() + result.durationMs + delay),
      failAfter: new Date(d.seriesStartedAt.getTime() + WEBHOOK_LIMITS.retryHorizonMs),
    };
  }
}

/** Outcomes recorded together (one statement). */
const FLUSH_EVERY = 16;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
