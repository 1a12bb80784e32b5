import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import {
  bookCloseCatchUp,
  checkCanClose,
  cohortsAsOf,
  firstQuarterWithActivity,
  freezePeriod,
  getClose,
  lockClose,
  recordCloseApproval,
  redemptionTriangle,
  setCloseGlEntry,
  setCloseStatus,
  type CloseStatus,
} from '../db/close';
import { verifyDecisionRequest } from '../db/approval-requests';
import { buildCloseReport } from '../db/close-report';
import { closeAnchorMemo } from '../db/audit-anchors';
import { closeOwnUnpostedLines, planGlBatch, recordCloseOwnPosting, unpostedBatchesThrough } from '../db/gl-daily';
import { programIds } from '../db/programs';
import { postedEntryIds } from '../db/reconciliation';
import { DEFAULT_ESTIMATION_LIMITS, projectUltimateRates, type EstimationLimits } from '../domain/breakage';
import type { CloseProposal, CloseReport } from '../domain/close-report';
import { ApiError } from '../domain/errors';
import { newPointsEstimate, type NewPointsEstimate } from '../domain/new-points-estimate';
import { decimalToMillionths, millionthsToDecimal, rateToMillionths } from '../domain/money';
import { quarterBounds } from '../domain/period';
import { startCloseSchema } from '../domain/schemas';
import { SCHEDULE_CLOSE_STARTER } from '../domain/workflow-ids';
import { recognizedToDate } from '../domain/recognition';
import { postBatch } from './gl-daily';
import { glEntryId as glEntryIdOf } from './redemption';
import type { GlClient } from './services/gl';
import { ServiceError } from './services/http';

export interface CloseRef {
  programId: string;
  period: string;
}

export type { CloseProposal };

/** The most programs one quarterly run looks at. */
const MAX_PROGRAMS_PER_RUN = 1_000;

/** Business refusals are final; anything else (the database, the GL) is retried. */
async function final<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiError && e.statusCode < 500)
      throw ApplicationFailure.nonRetryable(e.message, e.code, e.details);
    if (e instanceof ServiceError && !e.retryable) throw ApplicationFailure.nonRetryable(e.message, e.code);
    throw e;
  }
}

/**
 * The quarterly close's steps, bound to the ledger database and the GL. `estimation`: the policy of
 * docs/close.md (minimum cohorts backing a factor, an approved tail factor), DEFAULT_ESTIMATION_LIMITS
 * when not given.
 */
/** The terms a close's start request carries (api/routes/closes.ts): the override, or none. */
const startOverride = z.object({ override: startCloseSchema.shape.redemptionRateOverride.unwrap().nullable() });

export function createCloseActivities(deps: { pool: Pool; gl: GlClient; estimation?: EstimationLimits }) {
  const { pool, gl } = deps;
  const limits = deps.estimation ?? DEFAULT_ESTIMATION_LIMITS;
  return {
    /**
     * Freezes the quarter. With `startRequestId` (runs since `close-start-verified`), who started
     * the close and its override are the API's start request's, verified against the database (a
     * key of a finance principal, active, for this program: db/approval-requests.ts), never the
     * workflow's input: the starter is the one person who cannot approve, so a close started on
     * Temporal under a made-up name would let its real starter approve it. Without a valid request
     * nothing is frozen. Returns who started it.
     */
    async freezeQuarter(
      q: CloseRef & {
        startedBy: string;
        workflowId: string;
        override: { rate: number; justification: string } | null;
        startRequestId?: string | null;
        verifyStart?: boolean;
        bySchedule?: boolean;
      },
    ) {
      let startedBy = q.startedBy;
      let override = q.override;
      if (q.verifyStart && q.bySchedule && !q.startRequestId) {
        startedBy = SCHEDULE_CLOSE_STARTER;
        override = null; // the Schedule never overrides the estimate
      } else if (q.verifyStart) {
        const verdict = await verifyDecisionRequest(
          pool,
          q.startRequestId,
          { kind: 'close_start', programId: q.programId, subject: q.period, workflowId: q.workflowId },
          ['finance'],
          null,
        );
        if (!verdict.ok) throw ApplicationFailure.nonRetryable(`the close's start: ${verdict.reason}`, verdict.code);
        startedBy = verdict.decision.by;
        const parsed = startOverride.safeParse(verdict.decision.detail);
        if (!parsed.success)
          throw ApplicationFailure.nonRetryable(
            "the close's start request carries no terms",
            'decision_request_mismatch',
          );
        override = parsed.data.override;
      }
      return final(async () => {
        const c = await freezePeriod(pool, {
          programId: q.programId,
          period: q.period,
          actor: startedBy,
          workflowId: q.workflowId,
          now: new Date(),
          override: override
            ? { rate: millionthsToDecimal(rateToMillionths(override.rate)), justification: override.justification }
            : null,
        });
        return { status: c.status, workflowId: c.workflowId, startedBy: c.startedBy };
      });
    },

    /**
     * Re-estimates every cohort's ultimate redemption rate from the triangle (or takes the
     * override) and proposes the catch-up per cohort as of the period's end. Set-based: two
     * aggregate queries, whatever the number of members. Stores the proposal on the close. Every
     * estimate is within its cohort's bounds; an override the API let through that a backdated
     * write moved out of them before the freeze is brought within them, the reason recorded.
     */
    async estimateBreakageAndPropose(q: CloseRef): Promise<CloseProposal> {
      const { end } = quarterBounds(q.period);
      const close = await getClose(pool, q.programId, q.period);
      if (!close) throw ApplicationFailure.nonRetryable(`no close of ${q.period}`, 'not_found');
      const cohorts = await cohortsAsOf(pool, q.programId, end);
      const triangle = await redemptionTriangle(pool, q.programId, q.period, cohorts, new Map());
      const override = close.override ? decimalToMillionths(close.override.rate) : null;
      const { factors, estimates } = projectUltimateRates(triangle, override, limits);
      const rows = cohorts.map((c, i) => {
        const e = estimates[i]!;
        const target = recognizedToDate({
          pointsIssued: c.pointsIssued,
          allocatedMinor: c.allocatedMinor,
          allocatedMicro: c.allocatedMicro,
          pointsRedeemed: c.pointsRedeemed,
          pointsExpired: c.pointsExpired,
          ultimateRedemption: e.rate,
          costPerPointMinor: c.costPerPointMinor,
        });
        const t = triangle[i]!;
        return {
          cohort: c.cohort,
          rate: millionthsToDecimal(e.rate),
          priorRate: millionthsToDecimal(c.priorRateMillionths),
          method: e.method,
          reason: e.reason,
          lowerBound: e.lowerBound === null ? null : millionthsToDecimal(e.lowerBound),
          upperBound: e.upperBound === null ? null : millionthsToDecimal(e.upperBound),
          bounded: e.bounded,
          catchUpMinor: Number(target - c.recognizedMinor),
          development: t.cumulativeRedeemed.map((r) =>
            t.pointsIssued > 0n ? Number((r * 1_000_000n) / t.pointsIssued) / 1_000_000 : 0,
          ),
        };
      });
      const proposal: CloseProposal & { newPointsRate: NewPointsEstimate | null } = {
        period: q.period,
        cohorts: rows,
        factors: factors.map((f) => ({
          age: f.age,
          factor: f.denominator > 0n ? Number((f.numerator * 1_000_000n) / f.denominator) / 1_000_000 : null,
          cohorts: f.cohorts,
          sufficient: f.sufficient,
        })),
        totalCatchUpMinor: rows.reduce((s, r) => s + r.catchUpMinor, 0),
        policy: {
          minCohortsPerFactor: limits.minCohortsPerFactor,
          tailFactor: limits.tailFactor === null ? null : Number(millionthsToDecimal(limits.tailFactor)),
        },
        override: close.override
          ? { rate: Number(close.override.rate), justification: close.override.justification }
          : null,
        newPointsRate: null,
      };
      // what prices the points issued once this close is approved (shown to the controller with the rest)
      proposal.newPointsRate = newPointsEstimate(proposal);
      await setCloseStatus(pool, q.programId, q.period, 'proposed', { proposal });
      return proposal;
    },

    /** Programs whose next quarter to close is `period` and that have no close of it yet (at most 1,000). */
    async programsDueForClose(q: {
      period: string;
    }): Promise<{ due: string[]; skipped: Array<{ programId: string; reason: string }> }> {
      const ids = await programIds(pool, MAX_PROGRAMS_PER_RUN);
      const due: string[] = [];
      const skipped: Array<{ programId: string; reason: string }> = [];
      for (const programId of ids) {
        const first = await firstQuarterWithActivity(pool, programId);
        if (first === null || first > q.period) {
          skipped.push({ programId, reason: 'no activity in or before the quarter' });
          continue;
        }
        try {
          const existing = await checkCanClose(pool, programId, q.period, new Date());
          if (existing) skipped.push({ programId, reason: `already ${existing.status}` });
          else due.push(programId);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          skipped.push({ programId, reason: e.message });
        }
      }
      return { due, skipped };
    },

    /**
     * An approval counts only once this passes (issue 14, item 1): the decision request the API
     * recorded exists and is for this close, its key is active, its principal a controller (or
     * admin) and not the close's starter as the database has it. Answers the approver; a refusal is
     * final and changes nothing.
     */
    async verifyCloseApproval(q: CloseRef & { workflowId: string; requestId: string }): Promise<{ approver: string }> {
      const close = await getClose(pool, q.programId, q.period);
      if (!close) throw ApplicationFailure.nonRetryable(`no close of ${q.period}`, 'not_found');
      const verdict = await verifyDecisionRequest(
        pool,
        q.requestId,
        { kind: 'close_approval', programId: q.programId, subject: q.period, workflowId: q.workflowId },
        ['controller'],
        close.startedBy,
      );
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, verdict.code);
      if (verdict.decision.decision !== 'approve')
        throw ApplicationFailure.nonRetryable('the decision request is not an approval', 'decision_request_mismatch');
      return { approver: verdict.decision.by };
    },

    async recordCloseStatus(q: CloseRef & { status: CloseStatus }): Promise<void> {
      await setCloseStatus(pool, q.programId, q.period, q.status);
    },

    /**
     * Books the approved proposal in the subledger, then posts to the GL what no daily posting has
     * carried of the period (`loyalty:<p>:close-rest:<period>`, none once every day was posted) and,
     * in an entry of its own, exactly the catch-ups it booked (`loyalty:<p>:close:<period>`).
     */
    async bookCatchUpAndPostToGl(q: CloseRef & { approvedBy: string }): Promise<{ glEntryId: string | null }> {
      const { end } = quarterBounds(q.period);
      const close = await getClose(pool, q.programId, q.period);
      const proposal = close?.proposal as (CloseProposal & { newPointsRate?: NewPointsEstimate | null }) | null;
      if (!close || !proposal) throw ApplicationFailure.nonRetryable(`no proposal for ${q.period}`, 'not_found');
      await recordCloseApproval(pool, q.programId, q.period, q.approvedBy);
      // From the booking on, new accruals and new cohorts start from the approved estimate (a
      // proposal made before it was recorded there: the same rule applied to it now); recorded in
      // the booking's transaction, so both land or neither does.
      const pricing = proposal.newPointsRate !== undefined ? proposal.newPointsRate : newPointsEstimate(proposal);
      await bookCloseCatchUp(
        pool,
        q.programId,
        q.period,
        end,
        proposal.cohorts.map((c) => ({ cohort: c.cohort, rate: c.rate, catchUpMinor: c.catchUpMinor })),
        `close:${q.approvedBy}`,
        pricing ? pricing.rate : null,
      );

      const date = new Date(end.getTime() - 1).toISOString().slice(0, 10);
      // every close anchors the audit chains (signed, outside the database); the memo of each GL entry it posts carries the anchor (db/audit-anchors.ts)
      const memo = await closeAnchorMemo(pool, q.programId, q.period);
      // A day's batch the GL never took (refused, or an outage past its run's retries) holds its
      // entries claimed, so nothing else would carry them: post each again now, with the body it
      // was fixed with; one the GL still refuses fails the close here, before anything of it posts.
      for (const stuck of await unpostedBatchesThrough(pool, q.programId, date))
        await postBatch(pool, gl, stuck, {
          date: stuck.businessDate,
          description: `loyalty ${stuck.kind.replace('_', '-')} ${stuck.businessDate} (${stuck.journalCount}), posted by the close of ${q.period}`,
        });
      // First what no daily run has carried yet (a day of the quarter not yet posted, an entry
      // back-dated after its day's run), in an entry of its own, so that nothing of the quarter is
      // left out whichever of the close and the daily posting runs first (docs/accounting.md).
      const rest = await planGlBatch(pool, {
        entryId: glEntryIdOf(q.programId, `close-rest:${q.period}`),
        programId: q.programId,
        kind: 'close_rest',
        businessDate: date,
        through: end,
        withSagaJournals: true, // a saga's journal its saga never posted (refused, compensated)
        actor: `close:${q.approvedBy}`,
      });
      const restPosted = await postBatch(pool, gl, rest, {
        date,
        description: `loyalty close ${q.period} not posted daily (${rest.journalCount})${memo ? ` ${memo}` : ''}`,
      });

      // Then the close's own entry: exactly the catch-ups it booked (idempotent per period:
      // `loyalty:<p>:close:<period>`); their true-up after the period is dated now and goes with that day.
      const lines = await closeOwnUnpostedLines(pool, q.programId, q.period);
      const glEntryId = `loyalty:${q.programId}:close:${q.period}`;
      if (lines.length > 0) {
        await final(() =>
          gl
            .postEntry(
              { entryId: glEntryId, date, description: `loyalty close ${q.period}${memo ? ` ${memo}` : ''}`, lines },
              `gl:${glEntryId}`,
            )
            .catch((e) => {
              if (!(e instanceof ServiceError && e.code === 'entry_exists')) throw e; // ours, taken by an earlier attempt
            }),
        );
      }
      await recordCloseOwnPosting(pool, {
        entryId: glEntryId,
        programId: q.programId,
        period: q.period,
        businessDate: date,
        lines,
      });
      // a retry after the posting finds nothing left to post: the entry an earlier attempt posted stays the close's
      // (the close's entry is its own; with nothing of its own to post, the one it posted for the days not posted daily)
      const own = lines.length > 0 || (await postedEntryIds(pool, [glEntryId])).has(glEntryId);
      const posted = own ? glEntryId : restPosted;
      await setCloseGlEntry(pool, q.programId, q.period, posted);
      return { glEntryId: posted };
    },

    /** Builds the report from the books and locks the period; a locked close never changes. */
    async lockPeriodAndStoreReport(q: CloseRef): Promise<CloseReport> {
      const close = await getClose(pool, q.programId, q.period);
      if (!close) throw ApplicationFailure.nonRetryable(`no close of ${q.period}`, 'not_found');
      if (close.status === 'locked') return close.report as CloseReport;
      const report = await buildCloseReport(pool, close, 'locked');
      await lockClose(pool, q.programId, q.period, report);
      return report;
    },
  };
}

export type CloseActivities = ReturnType<typeof createCloseActivities>;
