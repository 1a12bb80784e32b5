import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, proxyActivities, startChild, upsertMemo } from '@temporalio/workflow';
import type { CloseActivities } from '../activities/close';
import { previousPeriod, quarterOf } from '../domain/period';
import { SA } from '../domain/search-attributes';
import { closeWorkflowId, DEFAULT_CLOSE_APPROVAL, SCHEDULE_CLOSE_STARTER } from '../domain/workflow-ids';
import { closeQuarter } from './close';

const act = proxyActivities<CloseActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/**
 * Started by the quarterly Temporal Schedule some days after each quarter ends: starts the close of
 * the quarter just ended for every program whose next quarter to close it is. A close already
 * started (by hand or by an earlier run) is left alone. Each close is its own workflow that
 * outlives this one (it waits days for a controller).
 */
export async function scheduledCloses(
  input: { period?: string } = {},
): Promise<{ period: string; started: string[]; skipped: Array<{ programId: string; reason: string }> }> {
  const period = input.period ?? previousPeriod(quarterOf(new Date(Date.now())));
  const due = await act.programsDueForClose({ period });
  const started: string[] = [];
  const skipped = [...due.skipped];
  for (const programId of due.due) {
    try {
      await startChild(closeQuarter, {
        workflowId: closeWorkflowId(programId, period),
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [{ programId, period, startedBy: SCHEDULE_CLOSE_STARTER, override: null, ...DEFAULT_CLOSE_APPROVAL }],
        typedSearchAttributes: [
          { key: SA.program, value: programId },
          { key: SA.period, value: period },
        ],
      });
      started.push(programId);
    } catch (e) {
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
      skipped.push({ programId, reason: 'a close of this quarter is already running' });
    }
  }
  upsertMemo({ summary: `${period}: ${started.length} close(s) started, ${skipped.length} skipped` });
  return { period, started, skipped };
}
