import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { ackWakeups, pendingWakeups, releaseWakeups, type Wakeup } from '../db/wakeups';
import { SA } from '../domain/search-attributes';
import { memberWorkflowId } from '../domain/workflow-ids';
import { memberLifecycle, wakeSignal } from '../workflows/member';

export interface RelayOptions {
  pool: Pool;
  client: Client;
  taskQueue: string;
  log: Logger;
  /** wake-ups read per round */
  batchSize: number;
  /** signals in flight at once */
  concurrency: number;
  /** pause when the outbox is empty */
  idleMs: number;
  /** longest pause after Temporal failed */
  maxBackoffMs: number;
  /** false against servers that cannot register custom search attributes */
  searchAttributes: boolean;
}

/**
 * The outbox relay: delivers member wake-ups recorded in PostgreSQL to Temporal with
 * signal-with-start. Accruals never wait on Temporal; if it is down, wake-ups accumulate in the
 * table and are delivered when it is back. A wake-up is removed only after Temporal accepted it.
 * Each relay leases what it reads (db/wakeups.ts), so several workers' relays share the outbox.
 */
export class WakeupRelay {
  private stopped = false;
  private loop: Promise<void> | null = null;
  /** wake-ups delivered and acknowledged in the outbox */
  delivered = 0;
  /** signals Temporal accepted, counted one by one (for rates finer than a batch) */
  signalled = 0;

  constructor(private readonly o: RelayOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoffMs = this.o.idleMs;
    while (!this.stopped) {
      try {
        const batch = await pendingWakeups(this.o.pool, this.o.batchSize);
        if (batch.length === 0) {
          await sleep(this.o.idleMs);
          continue;
        }
        const done = await this.deliver(batch);
        await ackWakeups(this.o.pool, done);
        this.delivered += done.length;
        if (done.length < batch.length) {
          await releaseWakeups(
            this.o.pool,
            batch.filter((w) => !done.includes(w)),
          );
          throw new Error(`${batch.length - done.length} wake-ups not delivered`);
        }
        backoffMs = this.o.idleMs;
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message, backoffMs }, 'wake-up relay: will retry');
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.o.maxBackoffMs);
      }
    }
  }

  private async deliver(batch: Wakeup[]): Promise<Wakeup[]> {
    const done: Wakeup[] = [];
    let next = 0;
    const worker = async () => {
      while (next < batch.length && !this.stopped) {
        const w = batch[next++]!;
        try {
          await this.o.client.workflow.signalWithStart(memberLifecycle, {
            workflowId: memberWorkflowId(w.programId, w.memberId),
            taskQueue: this.o.taskQueue,
            args: [{ programId: w.programId, memberId: w.memberId }],
            signal: wakeSignal,
            signalArgs: [],
            memo: { summary: `member ${w.memberId} of ${w.programId}` },
            ...(this.o.searchAttributes
              ? {
                  typedSearchAttributes: [
                    { key: SA.program, value: w.programId },
                    { key: SA.member, value: w.memberId },
                  ],
                }
              : {}),
          });
          done.push(w);
          this.signalled++;
        } catch (e) {
          this.o.log.debug({ err: (e as Error).message, member: w.memberId }, 'wake-up not delivered');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, batch.length) }, worker));
    return done;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
