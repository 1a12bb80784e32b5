import type { Pool } from 'pg';
import { accrueBatch, type AccrualItem, type WriteResult } from '../db/ledger';
import { ApiError } from '../domain/errors';
import { stripeOf } from '../domain/stripe';

export interface BatcherOptions {
  /** accruals per transaction at most */
  maxBatch: number;
  /**
   * lanes, each with at most one transaction in flight. A member's accruals always take the lane
   * of its stripe, so lanes never lock the same member or stripe row and run in parallel.
   */
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

interface Lane {
  queue: Pending[];
  busy: boolean;
}

/**
 * Group commit for accruals: requests that arrive while a transaction is in flight share the
 * next one. One commit (one fsync) then serves many accruals; each still gets its own answer.
 */
export class AccrualBatcher {
  private readonly lanes: Lane[];
  private queuedCount = 0;

  constructor(
    private readonly pool: Pool,
    private readonly opts: BatcherOptions,
  ) {
    this.lanes = Array.from({ length: opts.maxInFlight }, () => ({ queue: [], busy: false }));
  }

  submit(item: AccrualItem): Promise<WriteResult> {
    if (this.queuedCount >= this.opts.maxQueued) {
      return Promise.reject(
        new ApiError(503, 'loyalty_unavailable', 'too many accruals waiting; retry shortly', { retryAfterMs: 100 }),
      );
    }
    return new Promise((resolve, reject) => this.enqueue({ item, attempts: 0, resolve, reject }));
  }

  get queued(): number {
    return this.queuedCount;
  }

  private enqueue(p: Pending): void {
    const lane = this.lanes[stripeOf(p.item.memberId) % this.lanes.length]!;
    lane.queue.push(p);
    this.queuedCount++;
    this.pump(lane);
  }

  private pump(lane: Lane): void {
    if (lane.busy || lane.queue.length === 0) return;
    const batch = lane.queue.splice(0, this.opts.maxBatch);
    this.queuedCount -= batch.length;
    lane.busy = true;
    void this.run(batch).finally(() => {
      lane.busy = false;
      this.pump(lane);
    });
  }

  private async run(batch: Pending[]): Promise<void> {
    let results: Awaited<ReturnType<typeof accrueBatch>>;
    try {
      results = await accrueBatch(
        this.pool,
        batch.map((p) => p.item),
      );
    } catch (e) {
      const err = new ApiError(
        503,
        'loyalty_unavailable',
        'the ledger database is unavailable; retry with the same Idempotency-Key',
        {
          cause: (e as Error).message,
        },
      );
      for (const p of batch) p.reject(err);
      return;
    }
    results.forEach((r, i) => {
      const p = batch[i]!;
      if (r === 'retry') {
        p.attempts++;
        if (p.attempts < this.opts.maxAttempts) this.enqueue(p);
        else
          p.reject(
            new ApiError(503, 'loyalty_unavailable', 'accrual kept conflicting; retry with the same Idempotency-Key'),
          );
      } else if (r instanceof Error) {
        p.reject(r);
      } else {
        p.resolve(r);
      }
    });
  }
}
