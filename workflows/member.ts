import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { MemberActivities, MemberRef } from '../activities/member';

/** Tells the workflow to read its deadline again (new member, idle timer, merge, rule change). */
export const wakeSignal = defineSignal('wake');

/** Rounds of arm / sleep / expire in one run before continue-as-new (bounds the history). */
export const MAX_ROUNDS_PER_RUN = 100;

const ledger = proxyActivities<MemberActivities>({
  // one short SQL transaction each; a dead worker's attempt is retried after this long
  startToCloseTimeout: '10 seconds',
  // The ledger database is ours: keep retrying (with backoff) until it answers.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
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
  setHandler(wakeSignal, () => {
    woken = true;
  });

  for (let round = 0; round < maxRounds && !workflowInfo().continueAsNewSuggested; round++) {
    woken = false;
    const state = await ledger.armExpiryTimer(ref);
    if (state.status === 'merged') {
      upsertMemo({ summary: `merged into ${state.mergedInto}` });
      return { status: 'merged', mergedInto: state.mergedInto ?? '' };
    }
    if (state.status === 'unknown') return { status: 'unknown_member' };
    upsertMemo({ summary: `${state.balance} pts; ${state.expiresAt ? `expire ${state.expiresAt} without a purchase` : 'no expiry'}` });

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
