import {
  condition,
  continueAsNew,
  defineSignal,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { MemberActivities, MemberRef } from '../activities/member';

/** Tells the workflow to read its deadline again (new member, idle timer, merge, rule change). */
export const wakeSignal = defineSignal('wake');

/** Rounds of arm / sleep / expire in one run before continue-as-new (bounds the history). */
export const MAX_ROUNDS_PER_RUN = 100;

// Local activities: each is one short SQL transaction on the worker that runs the workflow, so
// they need no activity task on the server (one workflow task per wake-up instead of three; see
// bench/RESULTS.md). A dead worker's attempt is retried by the next workflow task.
const ledger = proxyLocalActivities<MemberActivities>({
  startToCloseTimeout: '10 seconds',
  // The ledger database is ours: keep retrying (with backoff) until it answers.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  localRetryThreshold: '10 seconds',
});

export type MemberLifecycleResult = { status: 'merged'; mergedInto: string } | { status: 'unknown_member' };

/**
 * One per member: owns the purchase-protection timer. The deadline lives in PostgreSQL and every
 * purchase moves it there (no signal per purchase). The timer is armed for the deadline last read;
 * when it fires the workflow reads the deadline again and sleeps on if a purchase moved it, or
 * expires the remaining balance if it did not. See docs/member-lifecycle.md.
 */
export async function memberLifecycle(input: MemberRef & { maxRoundsPerRun?: number }): Promise<MemberLifecycleResult> {
  const ref: MemberRef = { programId: input.programId, memberId: input.memberId };
  const maxRounds = input.maxRoundsPerRun ?? MAX_ROUNDS_PER_RUN;
  let woken = false;
  let memo = '';
  const summarize = (summary: string) => {
    if (summary !== memo) upsertMemo({ summary });
    memo = summary;
  };
  setHandler(wakeSignal, () => {
    woken = true;
  });

  for (let round = 0; round < maxRounds && !workflowInfo().continueAsNewSuggested; round++) {
    woken = false;
    const state = await ledger.armExpiryTimer(ref);
    if (state.status === 'merged') {
      summarize(`merged into ${state.mergedInto}`);
      return { status: 'merged', mergedInto: state.mergedInto ?? '' };
    }
    if (state.status === 'unknown') return { status: 'unknown_member' };
    summarize(
      `${state.balance} pts; ${state.expiresAt ? `expire ${state.expiresAt} without a purchase` : 'no expiry'}`,
    );

    if (state.expiresAt === null) {
      await condition(() => woken);
      continue;
    }
    const waitMs = Date.parse(state.expiresAt) - Date.now();
    if (waitMs > 0) {
      await condition(() => woken, waitMs);
      continue; // woken or deadline reached: read the deadline again before acting
    }
    await ledger.expireUnprotectedPoints({ ...ref, asOf: new Date(Date.now()).toISOString() });
  }
  return continueAsNew<typeof memberLifecycle>(input);
}
