import type { Pool } from 'pg';
import { accrueBatch, type AccrualItem, type WriteResult } from '../db/ledger';
import { ApiError } from '../domain/errors';

export interface BatcherOptions {
  /** accruals per transaction at most */
  maxBatch: number;
  /** transactions in flight at once; more than one can deadlock, which is retried */
  maxInFlight: number;
  /** requests waiting at most; past it the API answers 503 instead of queueing without bound */
  maxQueued: number;
  /** runs of one item after a deadlock, at most */
  maxAttempts: number;
}

interface Pending {
  item: AccrualItem;
  attempts: number;
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for accruals: requests that arrive while a transaction is in flight share the
 * next one. One commit (one fsync) then serves many accruals; each still gets its own answer.
 */
export class AccrualBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly pool: Pool,
    private readonly opts: BatcherOptions,
  ) {}

  submit(item: AccrualItem): Promise<WriteResult> {
    if (this.queue.length >= this.opts.maxQueued) {
      return Promise.reject(new ApiError(503, 'loyalty_unavailable', 'too many accruals waiting; retry shortly', { retryAfterMs: 100 }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ item, attempts: 0, resolve, reject });
      this.pump();
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      // One lock order for every transaction: fewer deadlocks when several are in flight.
      batch.sort((a, b) => (a.item.memberId < b.item.memberId ? -1 : a.item.memberId > b.item.memberId ? 1 : 0));
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    let results: Awaited<ReturnType<typeof accrueBatch>>;
    try {
      results = await accrueBatch(this.pool, batch.map((p) => p.item));
    } catch (e) {
      const err = new ApiError(503, 'loyalty_unavailable', 'the ledger database is unavailable; retry with the same Idempotency-Key', {
        cause: (e as Error).message,
      });
      for (const p of batch) p.reject(err);
      return;
    }
    results.forEach((r, i) => {
      const p = batch[i]!;
      if (r === 'retry') {
        p.attempts++;
        if (p.attempts < this.opts.maxAttempts) this.queue.push(p);
        else p.reject(new ApiError(503, 'loyalty_unavailable', 'accrual kept conflicting; retry with the same Idempotency-Key'));
      } else if (r instanceof Error) {
        p.reject(r);
      } else {
        p.resolve(r);
      }
    });
  }
}
