import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import {
  AUDIT_ANCHOR_SCHEDULE_ID,
  DAILY_GL_POSTING_SCHEDULE_ID,
  DAILY_RECONCILIATION_SCHEDULE_ID,
  QUARTERLY_CLOSE_SCHEDULE_ID,
} from '../domain/workflow-ids';
import { auditAnchorCheckpoint } from '../workflows/audit-anchor';
import { scheduledCloses } from '../workflows/close-schedule';
import { dailyGlPosting } from '../workflows/gl-daily';
import { dailyReconciliation } from '../workflows/reconciliation';

/**
 * The daily reconciliation's Temporal Schedule: every day at `hourUtc:minuteUtc` it reconciles the
 * day before for every program. Created once; a second start finds it and leaves it as it is
 * (change it in the Temporal UI or delete it to have it created again).
 */
export async function ensureReconciliationSchedule(
  client: Client,
  o: { taskQueue: string; hourUtc: number; minuteUtc: number },
): Promise<'created' | 'exists'> {
  try {
    await client.schedule.create({
      scheduleId: DAILY_RECONCILIATION_SCHEDULE_ID,
      spec: {
        calendars: [{ hour: o.hourUtc, minute: o.minuteUtc, comment: 'daily reconciliation of the day before (UTC)' }],
      },
      action: {
        type: 'startWorkflow',
        workflowType: dailyReconciliation,
        taskQueue: o.taskQueue,
        args: [{}],
        workflowId: 'reconciliation:daily',
      },
      // a day still running when the next is due: skip the next (it reconciles a different day, and a late run catches up by hand)
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      memo: {
        summary: `reconciles every program's redemptions against billing and the GL, daily at ${String(o.hourUtc).padStart(2, '0')}:${String(o.minuteUtc).padStart(2, '0')} UTC`,
      },
    });
    return 'created';
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) return 'exists';
    throw e;
  }
}

/**
 * The daily GL posting's Temporal Schedule: every day at `hourUtc:minuteUtc` (shortly after
 * midnight, before the reconciliation that checks the balances) it posts the day before of every
 * program to the GL, one summary entry each (workflows/gl-daily.ts). Overlap BUFFER_ALL: a run still
 * going when the next is due is followed by it, never skipped, so every day gets its own entry;
 * catch-up over 7 days: runs missed while Temporal or the workers were down are started when they
 * are back, each for the day it was due (and a day missed beyond that is carried by the next run,
 * which posts everything dated on or before its day). Created once, like the reconciliation's.
 */
export async function ensureGlDailySchedule(
  client: Client,
  o: { taskQueue: string; hourUtc: number; minuteUtc: number },
): Promise<'created' | 'exists'> {
  const at = `${String(o.hourUtc).padStart(2, '0')}:${String(o.minuteUtc).padStart(2, '0')}`;
  try {
    await client.schedule.create({
      scheduleId: DAILY_GL_POSTING_SCHEDULE_ID,
      spec: {
        calendars: [{ hour: o.hourUtc, minute: o.minuteUtc, comment: 'daily GL posting of the day before (UTC)' }],
      },
      action: {
        type: 'startWorkflow',
        workflowType: dailyGlPosting,
        taskQueue: o.taskQueue,
        args: [{}],
        workflowId: 'gl-daily:scheduled',
      },
      policies: { overlap: ScheduleOverlapPolicy.BUFFER_ALL, catchupWindow: '7 days' },
      memo: {
        summary: `posts every program's journal of the day before to the GL, one summary entry each, daily at ${at} UTC`,
      },
    });
    return 'created';
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) return 'exists';
    throw e;
  }
}

/**
 * The quarterly close's Temporal Schedule: `daysAfterQuarterEnd` days after each quarter ends
 * (01:00 UTC), it starts the close of that quarter for every program due (a close started by hand
 * is not doubled). Created once, like the reconciliation's.
 */
export async function ensureCloseSchedule(
  client: Client,
  o: { taskQueue: string; daysAfterQuarterEnd: number },
): Promise<'created' | 'exists'> {
  if (!Number.isInteger(o.daysAfterQuarterEnd) || o.daysAfterQuarterEnd < 0 || o.daysAfterQuarterEnd > 27) {
    throw new RangeError('daysAfterQuarterEnd must be a whole number of days from 0 to 27');
  }
  try {
    await client.schedule.create({
      scheduleId: QUARTERLY_CLOSE_SCHEDULE_ID,
      spec: {
        calendars: [
          {
            month: ['JANUARY', 'APRIL', 'JULY', 'OCTOBER'],
            dayOfMonth: o.daysAfterQuarterEnd + 1,
            hour: 1,
            comment: 'quarterly close',
          },
        ],
      },
      action: {
        type: 'startWorkflow',
        workflowType: scheduledCloses,
        taskQueue: o.taskQueue,
        args: [{}],
        workflowId: 'close:scheduled',
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '7 days' },
      memo: { summary: `starts each program's close ${o.daysAfterQuarterEnd} day(s) after quarter end` },
    });
    return 'created';
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) return 'exists';
    throw e;
  }
}

/**
 * The audit anchor's Temporal Schedule: every `everyMinutes` minutes a signed checkpoint of every
 * audit chain's head goes to the anchor store outside the database (besides the one each close
 * takes). Created once, like the reconciliation's.
 */
export async function ensureAuditAnchorSchedule(
  client: Client,
  o: { taskQueue: string; everyMinutes: number },
): Promise<'created' | 'exists'> {
  if (!Number.isInteger(o.everyMinutes) || o.everyMinutes < 1 || o.everyMinutes > 10_080) {
    throw new RangeError('everyMinutes must be a whole number of minutes from 1 to 10,080 (a week)');
  }
  try {
    await client.schedule.create({
      scheduleId: AUDIT_ANCHOR_SCHEDULE_ID,
      spec: { intervals: [{ every: `${o.everyMinutes} minutes` }] },
      action: {
        type: 'startWorkflow',
        workflowType: auditAnchorCheckpoint,
        taskQueue: o.taskQueue,
        args: [],
        workflowId: 'audit-anchor:scheduled',
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { summary: `anchors every audit chain's head outside the database every ${o.everyMinutes} minute(s)` },
    });
    return 'created';
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) return 'exists';
    throw e;
  }
}
