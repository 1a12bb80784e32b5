import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import {
  ApplicationFailure,
  executeChild,
  patched,
  proxyActivities,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { GlDailyActivities, GlDayResult } from '../activities/gl-daily';
import { SA } from '../domain/search-attributes';
import { glDailyWorkflowId } from '../domain/workflow-ids';

const act = proxyActivities<GlDailyActivities>({
  startToCloseTimeout: '15 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 20 },
});

/** Set by a Temporal Schedule on the runs it starts: the time the run was due (a catch-up run starts later). */
const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** `gl-daily:<programId>:<date>`: one program's day posted to the GL as one summary entry. */
export async function postProgramDayToGl(input: { programId: string; date: string }): Promise<GlDayResult> {
  const r = await act.postProgramDay(input);
  upsertMemo({
    summary: r.postedEntryId
      ? `${input.date}: ${r.journalCount} journal entries posted as ${r.postedEntryId} (${r.lines.length} accounts)`
      : `${input.date}: ${r.journalCount} journal entries, nothing to post`,
  });
  return r;
}

export interface GlDaySummary {
  programId: string;
  date: string;
  postedEntryId: string | null;
  journalCount: number;
}

/**
 * Started by the daily Temporal Schedule shortly after midnight (UTC): posts the day before (the day
 * the run was due for, on a catch-up run) for every program, one child workflow per program, in
 * order. A day missed is not lost: the next run carries everything dated on or before its day.
 */
export async function dailyGlPosting(input: { date?: string } = {}): Promise<GlDaySummary[]> {
  const due = workflowInfo().typedSearchAttributes.get(SCHEDULED_START);
  const date = input.date ?? new Date((due ? due.getTime() : Date.now()) - 86_400_000).toISOString().slice(0, 10);
  const programs = await act.listProgramsToPost();
  const out: GlDaySummary[] = [];
  // One program whose day fails (the GL refuses its entry) no longer stops the days of the programs
  // after it: each is posted, then the run fails naming the ones that did not. Runs from before
  // stopped at the first.
  const continuesPastAFailure = patched('gl-daily-continues-past-a-program');
  const failed: string[] = [];
  for (const programId of programs) {
    const child = executeChild(postProgramDayToGl, {
      args: [{ programId, date }],
      workflowId: glDailyWorkflowId(programId, date),
      typedSearchAttributes: [
        { key: SA.program, value: programId },
        { key: SA.period, value: date },
      ],
    });
    let r: GlDayResult;
    if (!continuesPastAFailure) r = await child;
    else {
      try {
        r = await child;
      } catch {
        failed.push(programId);
        continue;
      }
    }
    out.push({ programId, date, postedEntryId: r.postedEntryId, journalCount: r.journalCount });
  }
  upsertMemo({
    summary: `${date}: ${out.length} program(s), ${out.filter((s) => s.postedEntryId).length} GL entr(ies) posted${failed.length ? `, ${failed.length} failed: ${failed.join(', ')}` : ''}`,
  });
  if (failed.length)
    throw ApplicationFailure.nonRetryable(
      `the day ${date} was not posted for ${failed.length} program(s): ${failed.join(', ')} (the next run carries it)`,
      'gl_daily_failed',
    );
  return out;
}
