import { connectClient } from '../temporal/connect';
import { temporalSettings } from '../temporal/settings';
import { createPool } from '../db/pool';
import { latestRun } from '../db/reconciliation';
import type { ReconciliationReport } from '../domain/reconciliation';
import { SA } from '../domain/search-attributes';
import { reconciliationParams } from '../domain/schemas';
import { reconciliationWorkflowId } from '../domain/workflow-ids';
import { reconcileProgramDay } from '../workflows/reconciliation';

function checkArgs(programId: string, date: string): void {
  const parsed = reconciliationParams.safeParse({ programId, date });
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
}

export function formatReport(r: ReconciliationReport): string {
  const lines = [
    `reconciliation ${r.programId} ${r.date} (run ${r.runId}, ${r.recordedAt}, workflow ${r.workflowId})`,
    `  checked: ${r.redemptionsChecked} redemptions, ${r.creditsChecked} billing credits, ${r.glEntriesChecked} GL entries`,
    `  in progress: ${r.inProgress.length}${r.inProgress.length ? ` (${r.inProgress.slice(0, 10).join(', ')}${r.inProgress.length > 10 ? ', ...' : ''})` : ''}`,
    `  differences: ${r.differenceCount}`,
    ...r.differences.map(
      (d) =>
        `    ${d.check.padEnd(7)} ${d.reason.padEnd(24)} invoice ${d.invoiceId}${d.entryId ? ` entry ${d.entryId}` : ''}`,
    ),
  ];
  if (r.differences.length < r.differenceCount)
    lines.push(
      `    ... ${r.differenceCount - r.differences.length} more (the first ${r.differences.length} are stored)`,
    );
  if (r.balanceCheck) {
    lines.push(
      `  balances at the end of ${r.balanceCheck.asOf} (debits less credits; subledger, GL, not yet in the GL):`,
    );
    for (const a of r.balanceCheck.accounts)
      lines.push(`    ${a.account.padEnd(28)} ${a.subledgerMinor} ${a.glMinor} ${a.notYetInGlMinor}`);
    lines.push(`  balance differences: ${r.balanceCheck.differenceCount}`);
    for (const d of r.balanceCheck.differences)
      lines.push(
        `    ${d.account.padEnd(28)} subledger ${d.subledgerMinor}, GL ${d.glMinor}, difference ${d.differenceMinor}`,
      );
  }
  for (const m of r.monthly ?? [])
    lines.push(
      `  ${m.month} (to ${m.through}): ${m.differenceCount} account(s) differ` +
        m.accounts
          .filter((a) => a.differenceMinor !== 0)
          .map((a) => `; ${a.account} subledger ${a.subledgerMovementMinor}, GL ${a.glMovementMinor}`)
          .join(''),
    );
  return lines.join('\n') + '\n';
}

/** No difference in the redemptions and postings, and none in the balances per account (issue 15, item 5). */
const clean = (r: ReconciliationReport) => r.differenceCount === 0 && (r.balanceCheck?.differenceCount ?? 0) === 0;

const print = (r: ReconciliationReport, json: boolean) =>
  process.stdout.write(json ? JSON.stringify(r, null, 2) + '\n' : formatReport(r));

/** `loyalty reconcile`: runs the day's reconciliation on Temporal now; exit 0 no differences (nor in the balances), 1 differences. */
export async function runReconcile(o: {
  programId: string;
  date: string;
  json: boolean;
  address: string;
  namespace: string;
  taskQueue: string;
}): Promise<number> {
  checkArgs(o.programId, o.date);
  const { client, connection } = await connectClient(temporalSettings(o));
  try {
    const report = await client.workflow.execute(reconcileProgramDay, {
      workflowId: reconciliationWorkflowId(o.programId, o.date),
      taskQueue: o.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{ programId: o.programId, date: o.date }],
      typedSearchAttributes: [
        { key: SA.program, value: o.programId },
        { key: SA.period, value: o.date },
      ],
      memo: { summary: `${o.date}: reconciliation run from the CLI` },
    });
    print(report, o.json);
    return clean(report) ? 0 : 1;
  } finally {
    await connection.close();
  }
}

/** `loyalty reconciliation`: prints the day's stored report; exit 0 no differences (nor in the balances), 1 differences, 3 no report. */
export async function runReconciliationReport(o: {
  programId: string;
  date: string;
  json: boolean;
  databaseUrl: string;
}): Promise<number> {
  checkArgs(o.programId, o.date);
  const pool = createPool({
    connectionString: o.databaseUrl,
    maxConnections: 1,
    applicationName: 'loyalty-reconciliation',
  });
  try {
    const report = await latestRun(pool, o.programId, o.date);
    if (!report) {
      process.stderr.write(
        `no reconciliation of ${o.programId} for ${o.date} yet: run \`loyalty reconcile ${o.programId} --date ${o.date}\`\n`,
      );
      return 3;
    }
    print(report, o.json);
    return clean(report) ? 0 : 1;
  } finally {
    await pool.end();
  }
}
