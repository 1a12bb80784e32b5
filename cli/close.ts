import { connectClient } from '../temporal/connect';
import { temporalSettings } from '../temporal/settings';
import { checkCanClose, getClose, refuseOverrideOutsideBounds } from '../db/close';
import { buildCloseReport } from '../db/close-report';
import { createPool } from '../db/pool';
import { programCurrency } from '../db/programs';
import { reportToCsv, reportToHtml } from '../domain/close-report';
import { SA } from '../domain/search-attributes';
import { closeParams, startCloseSchema } from '../domain/schemas';
import { closeWorkflowId, DEFAULT_CLOSE_APPROVAL } from '../domain/workflow-ids';
import { closeQuarter, progressQuery, type CloseStep } from '../workflows/close';

interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
}

function checkArgs(programId: string, period: string): void {
  const parsed = closeParams.safeParse({ programId, period });
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
}

const STEP_TEXT: Record<CloseStep, string> = {
  freezing: 'freezing the quarter',
  estimating: 'frozen; building the redemption triangle and re-estimating breakage',
  awaiting_approval: "proposed; awaiting a controller's approval",
  escalated: 'no approval in time: escalated',
  posting: 'approved; booking the catch-up and posting to the GL',
  locking: 'posted; locking the period',
  locked: 'locked',
  cancelled: 'cancelled (the period stays frozen, not locked)',
};

/**
 * `loyalty close <programId> <period>`: starts the close (or finds it) and shows its steps until it
 * waits for approval or ends. Exit 0 when it reached either, 1 on a refusal (out of order, not ended).
 */
export async function runClose(
  o: TemporalTarget & {
    programId: string;
    period: string;
    databaseUrl: string;
    startedBy: string;
    override: { rate: number; justification: string } | null;
    waitMs: number;
  },
): Promise<number> {
  checkArgs(o.programId, o.period);
  if (o.override) startCloseSchema.parse({ period: o.period, redemptionRateOverride: o.override });
  const pool = createPool({ connectionString: o.databaseUrl, maxConnections: 2, applicationName: 'loyalty-close' });
  const { client, connection } = await connectClient(temporalSettings(o));
  try {
    const existing = await checkCanClose(pool, o.programId, o.period, new Date());
    const workflowId = existing?.workflowId ?? closeWorkflowId(o.programId, o.period);
    if (!existing) {
      if (o.override) await refuseOverrideOutsideBounds(pool, o.programId, o.period, o.override.rate);
      await client.workflow.start(closeQuarter, {
        workflowId,
        taskQueue: o.taskQueue,
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [
          {
            programId: o.programId,
            period: o.period,
            startedBy: o.startedBy,
            override: o.override,
            ...DEFAULT_CLOSE_APPROVAL,
          },
        ],
        memo: { summary: `${o.period}: started by ${o.startedBy}` },
        typedSearchAttributes: [
          { key: SA.program, value: o.programId },
          { key: SA.period, value: o.period },
        ],
      });
      process.stdout.write(`close ${o.programId} ${o.period}: started as ${o.startedBy} (workflow ${workflowId})\n`);
    } else {
      process.stdout.write(
        `close ${o.programId} ${o.period}: already ${existing.status}, started by ${existing.startedBy} (workflow ${workflowId})\n`,
      );
    }
    const handle = client.workflow.getHandle(workflowId);
    let last: CloseStep | null = null;
    const deadline = Date.now() + o.waitMs;
    for (;;) {
      const closed = await getClose(pool, o.programId, o.period);
      const step: CloseStep =
        closed?.status === 'locked'
          ? 'locked'
          : closed?.status === 'cancelled'
            ? 'cancelled'
            : ((await handle.query(progressQuery).catch(() => null))?.step ?? 'freezing');
      if (step !== last) process.stdout.write(`  ${new Date().toISOString().slice(11, 19)} ${STEP_TEXT[step]}\n`);
      last = step;
      if (step === 'awaiting_approval' || step === 'escalated') {
        const p = (await handle.query(progressQuery)).proposal;
        process.stdout.write(
          `  catch-up proposed: ${p?.totalCatchUpMinor ?? 0} (minor units) over ${p?.cohorts.length ?? 0} cohort(s)\n`,
        );
        process.stdout.write(
          `  approve: POST /v1/programs/${o.programId}/closes/${o.period}/approve as a controller other than ${closed?.startedBy ?? o.startedBy}\n`,
        );
        return 0;
      }
      if (step === 'locked' || step === 'cancelled') return 0;
      if (Date.now() > deadline) {
        process.stdout.write(
          `  still ${STEP_TEXT[step]} after ${o.waitMs / 1000} s; it goes on in Temporal (workflow ${workflowId})\n`,
        );
        return 0;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await connection.close();
    await pool.end();
  }
}

/** `loyalty report <programId> <period> [--format json|csv|html]`: the stored report of a locked period, else the books as they are. */
export async function runReport(o: {
  programId: string;
  period: string;
  format: 'json' | 'csv' | 'html';
  databaseUrl: string;
}): Promise<number> {
  checkArgs(o.programId, o.period);
  const pool = createPool({ connectionString: o.databaseUrl, maxConnections: 2, applicationName: 'loyalty-report' });
  try {
    const close = await getClose(pool, o.programId, o.period);
    if (!close) {
      process.stderr.write(
        `no close of ${o.programId} ${o.period}: start it with \`loyalty close ${o.programId} ${o.period}\`\n`,
      );
      return 3;
    }
    const report = await buildCloseReport(pool, close);
    const digits = (await programCurrency(pool, o.programId))!.currencyDigits; // the close's program exists (foreign key)
    const out =
      o.format === 'csv'
        ? reportToCsv(report)
        : o.format === 'html'
          ? reportToHtml(report, digits)
          : JSON.stringify(report, null, 2) + '\n';
    process.stdout.write(out);
    return 0;
  } finally {
    await pool.end();
  }
}
