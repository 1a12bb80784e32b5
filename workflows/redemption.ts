import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { RedemptionActivities, SagaRef } from '../activities/redemption';
import { waitMs } from './durations';

export interface RedemptionInput extends SagaRef {
  memberId: string;
  points: number;
  invoiceTotalMinor: number;
  occurredAt: string;
  jurisdiction: string | null;
  /**
   * Ignored since patch `redemption-rules-from-ledger`: the hold reads the terms from the program's
   * rule version (anyone who can reach Temporal can start a saga with any input). Kept for the runs
   * and histories from before, and so an older API's start still parses.
   */
  rules?: {
    pointValueMinor: number;
    minPoints: number;
    maxInvoiceShareMillionths: string;
    cohortOrder: 'oldest_first' | 'pro_rata';
    chargebackWindow: string;
  };
}

export interface RedemptionOutcome {
  redemptionId: string;
  invoiceId: string;
  /**
   * the member whose points it holds or took, a merged member's survivor (since patch
   * `redemption-member-resolved`; absent when the hold declined before finding one)
   */
  memberId?: string;
  status: 'applied' | 'declined' | 'reversed';
  reason: string | null;
  pointsApplied: number;
  creditMinor: number;
}

export interface Chargeback {
  chargebackId: string;
  status: 'opened' | 'won' | 'lost';
  /** the API's record of billing reporting it (db/approval-requests.ts, kind chargeback): since `chargeback-verified`, the only thing that makes a signal count */
  requestId?: string;
}

/** Answers once the credit is applied in billing or the redemption is declined (the API waits on it). */
export const outcomeUpdate = defineUpdate<RedemptionOutcome>('outcome');
export const chargebackSignal = defineSignal<[Chargeback]>('chargeback');
export const stateQuery = defineQuery<{
  outcome: RedemptionOutcome | null;
  frozen: boolean;
  chargebacks: Chargeback[];
}>('state');

// The steps are short calls (one SQL transaction, or one HTTP call with a 2-second timeout): local
// activities, retried on the worker, with no activity task on the server (billing waits for the
// answer, and each server round trip would add to it; see bench/RESULTS.md). Another team's service
// gets a few quick retries, then the saga compensates: the activities count those attempts
// (SERVICE_ATTEMPTS in activities/redemption.ts). Our own database is retried until it answers: with
// `maximumAttempts: 5` here, a PostgreSQL restart of a few seconds failed the whole saga at the hold
// (a hold committed just before would then stay held for good) or compensated a redemption whose
// entry the GL had already taken, leaving it there (found by test/faults).
const steps = proxyLocalActivities<RedemptionActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds' },
});
// Compensations and reversals must finish: they retry until they do.
const undo = proxyActivities<RedemptionActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** The step's own refusal (an ApplicationFailure with a type), wherever it sits in the cause chain. */
function refusal(err: unknown): ApplicationFailure | null {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApplicationFailure && e.type) return e;
  }
  return null;
}

/** The code of the service's refusal, the decline's reason. */
const failureCode = (err: unknown): string => refusal(err)?.type ?? 'service_unavailable';

/**
 * Whether a step's failure leaves its call in doubt: the service never answered for sure (the step
 * ran out of attempts), or answered "no" only after attempts that got no answer and may still land.
 */
function callInDoubt(err: unknown): boolean {
  const r = refusal(err);
  return (
    !r || r.type === 'service_unavailable' || (r.details?.[0] as { inDoubt?: boolean } | undefined)?.inDoubt === true
  );
}

/**
 * The forward steps and their compensations (since patch `saga-settles-calls-in-doubt`). A call to
 * billing or the GL that got no definite answer may still have been done: the service took it
 * after the adapter gave up, or a worker that died made it (this run may replay the hold from
 * history and still not know). Its compensation settles the doubt first, then undoes what was
 * done (activities/redemption.ts); for the credit it asks the ledger whether the credit was ever
 * sent. Older runs reversed the credit only after billing said yes, and undid a GL step in the
 * subledger only. `committedBefore`: a run of this saga whose worker died had already spent the
 * points (so billing took the credit): only the GL step is left. Returns the decline's reason, or
 * null when every step is done.
 */
async function runStepsSettlingCallsInDoubt(
  input: RedemptionInput,
  ref: SagaRef,
  applied: { pointsApplied: number; creditMinor: number },
  committedBefore: boolean,
): Promise<string | null> {
  const credit = { ...ref, points: applied.pointsApplied, creditMinor: applied.creditMinor };
  let done: 'held' | 'credited' | 'committed' = committedBefore ? 'committed' : 'held';
  let creditRefused = false;
  let glInDoubt = false;
  try {
    if (done === 'held') {
      await steps.getTaxTreatment({
        ...ref,
        memberId: input.memberId,
        jurisdiction: input.jurisdiction,
        creditMinor: applied.creditMinor,
      });
      await steps.applyCreditInBilling(credit).catch((e) => {
        creditRefused = !callInDoubt(e);
        throw e;
      });
      done = 'credited';
      await steps.commitPointsAndJournal(ref);
      done = 'committed';
    }
    await steps.postJournalToGl({ ...ref, reversal: false, occurredAt: input.occurredAt }).catch((e) => {
      glInDoubt = callInDoubt(e);
      throw e;
    });
    return null;
  } catch (err) {
    // in reverse order of the steps
    if (done === 'committed') {
      await undo.reversePointsAndJournal({ ...ref, reason: 'compensated', occurredAt: input.occurredAt });
      if (glInDoubt) await undo.settleAndReverseJournalInGl({ ...ref, occurredAt: input.occurredAt });
    }
    if (done !== 'held') await undo.reverseCreditInBilling({ ...ref, reason: 'compensated' });
    else if (!creditRefused) await undo.settleAndReverseCreditInBilling({ ...credit, reason: 'compensated' });
    if (done !== 'committed') await undo.releaseHeldPoints({ ...ref, reason: 'compensated' });
    return failureCode(err);
  }
}

/** The forward steps and compensations as runs started before patch `saga-settles-calls-in-doubt` replay them. */
async function runStepsBeforeSettling(
  input: RedemptionInput,
  ref: SagaRef,
  applied: { pointsApplied: number; creditMinor: number },
): Promise<string | null> {
  const compensations: Array<() => Promise<unknown>> = [];
  try {
    compensations.unshift(() => undo.releaseHeldPoints({ ...ref, reason: 'compensated' }));
    await steps.getTaxTreatment({
      ...ref,
      memberId: input.memberId,
      jurisdiction: input.jurisdiction,
      creditMinor: applied.creditMinor,
    });
    await steps.applyCreditInBilling({ ...ref, points: applied.pointsApplied, creditMinor: applied.creditMinor });
    compensations.unshift(() => undo.reverseCreditInBilling({ ...ref, reason: 'compensated' }));
    await steps.commitPointsAndJournal(ref);
    compensations.pop(); // the hold is spent: undoing it is now the reversal below
    compensations.unshift(() =>
      undo.reversePointsAndJournal({ ...ref, reason: 'compensated', occurredAt: input.occurredAt }),
    );
    await steps.postJournalToGl({ ...ref, reversal: false, occurredAt: input.occurredAt });
    return null;
  } catch (err) {
    for (const compensate of compensations) await compensate();
    return failureCode(err);
  }
}

/**
 * One per invoice, `redemption:<programId>:<invoiceId>`: hold the points, get the tax treatment,
 * apply the credit in billing, spend the points and book the revenue, post it to the GL. A failure
 * runs the compensations of the steps done, in reverse. Then it stays open for the chargeback
 * window: a lost chargeback runs the compensating reversal and claws back the points earned.
 */
export async function redemptionSaga(input: RedemptionInput): Promise<RedemptionOutcome> {
  const ref: SagaRef = { programId: input.programId, invoiceId: input.invoiceId, redemptionId: input.redemptionId };
  let outcome: RedemptionOutcome | null = null;
  let frozen = false;
  const chargebacks: Chargeback[] = [];
  const pending: Chargeback[] = [];
  setHandler(outcomeUpdate, async () => {
    await condition(() => outcome !== null);
    return outcome!;
  });
  setHandler(chargebackSignal, (cb) => {
    if (!chargebacks.some((c) => c.chargebackId === cb.chargebackId && c.status === cb.status)) pending.push(cb);
  });
  setHandler(stateQuery, () => ({ outcome, frozen, chargebacks }));
  const decide = (o: RedemptionOutcome) => {
    outcome = o;
    upsertMemo({
      summary: `${o.status}${o.reason ? ` (${o.reason})` : ''}: ${o.pointsApplied} pts for ${o.creditMinor} on ${o.invoiceId}`,
    });
    return o;
  };

  // The terms come from the ledger (issue 14, item 1): the hold reads the rule version in force and
  // answers with it. Runs from before took them, and the chargeback window, from the input.
  const rulesFromLedger = patched('redemption-rules-from-ledger');
  // Nor its member, points and invoice total: since this patch the hold acts only on what the API
  // recorded for the invoice (activities/redemption.ts holdPoints).
  const requestVerified = rulesFromLedger && patched('redemption-request-verified');
  const hold = rulesFromLedger
    ? await steps.holdPoints({
        ...ref,
        memberId: input.memberId,
        points: input.points,
        invoiceTotalMinor: input.invoiceTotalMinor,
        occurredAt: input.occurredAt,
        ...(requestVerified ? { verifyRequest: true } : {}),
      })
    : await steps.holdPoints({
        ...ref,
        memberId: input.memberId,
        points: input.points,
        invoiceTotalMinor: input.invoiceTotalMinor,
        pointValueMinor: input.rules!.pointValueMinor,
        minPoints: input.rules!.minPoints,
        maxInvoiceShareMillionths: input.rules!.maxInvoiceShareMillionths,
        cohortOrder: input.rules!.cohortOrder,
        occurredAt: input.occurredAt,
      });
  // A merged member's id redeems the survivor's points (the hold follows the merge chain, as an
  // accrual does): the outcome names the member it acted on, and the tax treatment is that member's.
  // Runs from before neither named it nor asked for the survivor's jurisdiction.
  const memberResolved = patched('redemption-member-resolved');
  const member = memberResolved ? (hold.memberId ?? input.memberId) : input.memberId;
  const applied = {
    redemptionId: hold.redemptionId ?? input.redemptionId,
    invoiceId: input.invoiceId,
    ...(memberResolved && hold.memberId ? { memberId: hold.memberId } : {}),
    pointsApplied: hold.pointsApplied ?? 0,
    creditMinor: hold.creditMinor ?? 0,
  };
  if (hold.status === 'declined') return decide({ ...applied, status: 'declined', reason: hold.reason ?? 'declined' });
  if (hold.existing && hold.redemptionId !== input.redemptionId) {
    // An earlier run (closed since) decided this invoice: report what it decided, do nothing again.
    // (Our own hold, found again after a worker died before recording it, is not this case: the
    // saga carries on, and every later step is idempotent by its key.)
    const status = hold.status === 'held' ? 'declined' : hold.status;
    return decide({ ...applied, status, reason: hold.reason ?? (hold.status === 'held' ? 'in_progress' : null) });
  }

  const declined = patched('saga-settles-calls-in-doubt')
    ? await runStepsSettlingCallsInDoubt(
        { ...input, memberId: member },
        ref,
        applied,
        hold.existing === true && hold.status === 'applied',
      )
    : await runStepsBeforeSettling(input, ref, applied);
  if (declined) return decide({ ...applied, status: 'declined', reason: declined });
  decide({ ...applied, status: 'applied', reason: null });

  // The chargeback window: opened freezes, won releases, lost reverses (once).
  const chargebackWindow = rulesFromLedger ? hold.rules?.chargebackWindow : input.rules?.chargebackWindow;
  // never so from the hold of this version; a plain Error fails the workflow task (retried), not the saga
  if (!chargebackWindow) throw new Error('the hold named no chargeback window');
  const startedAtMs = workflowInfo().startTime.getTime();
  const windowEndsAt = startedAtMs + waitMs(startedAtMs, chargebackWindow);
  // Anyone who reaches Temporal can send this signal (issue 14, item 1): since this patch a
  // chargeback counts only once an activity verified the API's record of billing reporting it (its
  // id and status, for this invoice); a signal without one, or with another's, changes nothing.
  const chargebacksVerified = patched('chargeback-verified');
  for (;;) {
    const remaining = windowEndsAt - Date.now();
    if (!(await condition(() => pending.length > 0, frozen ? undefined : Math.max(remaining, 0))) && !frozen) break;
    const cb = pending.shift();
    if (!cb) continue;
    if (chargebacksVerified) {
      // a refusal drops the signal; anything else (the workflow cancelled) is not a refusal
      const verified = await undo
        .verifyChargeback({ ...ref, workflowId: workflowInfo().workflowId, chargeback: cb })
        .then(
          () => true,
          (e: unknown) => {
            if (e instanceof ActivityFailure) return false;
            throw e;
          },
        );
      if (!verified) continue;
    }
    chargebacks.push(cb);
    if (cb.status === 'opened') frozen = true;
    else if (cb.status === 'won') frozen = false;
    else {
      const now = new Date(Date.now()).toISOString();
      await undo.reversePointsAndJournal({ ...ref, reason: `chargeback_lost:${cb.chargebackId}`, occurredAt: now });
      await undo.reverseCreditInBilling({ ...ref, reason: `chargeback ${cb.chargebackId}` });
      await undo.postJournalToGl({ ...ref, reversal: true, occurredAt: now });
      await undo.clawBackEarnedPoints({ ...ref, chargebackId: cb.chargebackId, occurredAt: now });
      return decide({ ...applied, status: 'reversed', reason: `chargeback_lost:${cb.chargebackId}` });
    }
  }
  return outcome ?? decide({ ...applied, status: 'applied', reason: null });
}
