import { executeChild, proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ReconciliationActivities } from '../activities/reconciliation';
import type { ReconciliationReport } from '../domain/reconciliation';
import { SA } from '../domain/search-attributes';
import { reconciliationWorkflowId } from '../domain/workflow-ids';

const act = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/** The UTC day before `ms`. */
function previousDay(ms: number): string {
  return new Date(ms - 86_400_000).toISOString().slice(0, 10);
}

export interface ProgramDaySummary {
  programId: string;
  date: string;
  differenceCount: number;
  inProgress: number;
}

/**
 * `reconciliation:<programId>:<date>`: one program's day. The report (every difference with its
 * invoice and reason) is stored in the ledger database and read through the API and the CLI.
 */
export async function reconcileProgramDay(input: { programId: string; date: string }): Promise<ReconciliationReport> {
  const report = await act.reconcileRedemptionsOfDay({ ...input, workflowId: workflowInfo().workflowId });
  upsertMemo({
    summary:
      `${input.date}: ${report.redemptionsChecked} redemptions, ${report.glEntriesChecked} GL entries checked; ` +
      `${report.differenceCount} difference(s), ${report.inProgress.length} in progress`,
  });
  return report;
}

/**
 * Started by the daily Temporal Schedule: reconciles the day before (UTC) for every program, one
 * child workflow per program, in order (the day's load on billing and the GL stays bounded).
 */
export async function dailyReconciliation(input: { date?: string } = {}): Promise<ProgramDaySummary[]> {
  const date = input.date ?? previousDay(Date.now());
  const programs = await act.listProgramsToReconcile();
  const out: ProgramDaySummary[] = [];
  for (const programId of programs) {
    const r = await executeChild(reconcileProgramDay, {
      args: [{ programId, date }],
      workflowId: reconciliationWorkflowId(programId, date),
      typedSearchAttributes: [
        { key: SA.program, value: programId },
        { key: SA.period, value: date },
      ],
    });
    out.push({ programId, date, differenceCount: r.differenceCount, inProgress: r.inProgress.length });
  }
  const withDifferences = out.filter((s) => s.differenceCount > 0).length;
  upsertMemo({ summary: `${date}: ${out.length} program(s) reconciled, ${withDifferences} with differences` });
  return out;
}
