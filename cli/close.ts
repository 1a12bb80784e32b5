import { randomUUID } from 'node:crypto';
import createClient from 'openapi-fetch';
import type { paths } from '../api/client/openapi';
import { getClose } from '../db/close';
import { buildCloseReport } from '../db/close-report';
import { createPool } from '../db/pool';
import { programCurrency } from '../db/programs';
import { reportToCsv, reportToHtml } from '../domain/close-report';
import { closeParams, startCloseSchema } from '../domain/schemas';
import type { CloseStep } from '../workflows/close';

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
 * `loyalty close <programId> <period>`: starts the close through the API (or finds it) with a
 * finance principal's key, and shows its steps until it waits for approval or ends. The key comes
 * from LOYALTY_API_KEY or `--key-file`, never the command line (argv is visible to every user);
 * `--as`, when given, must be the key's principal: the starter is recorded from the key, and the
 * starter is the one person who cannot approve. Exit 0 when it reached either, 1 on a refusal.
 */
export async function runClose(o: {
  programId: string;
  period: string;
  apiUrl: string;
  apiKey: string;
  as?: string;
  override: { rate: number; justification: string } | null;
  waitMs: number;
}): Promise<number> {
  checkArgs(o.programId, o.period);
  if (o.override) startCloseSchema.parse({ period: o.period, redemptionRateOverride: o.override });
  // the API's typed client (api/client/openapi.d.ts, generated from the routes): a path, parameter
  // or answer field that changes under this command fails `npm run typecheck`
  const api = createClient<paths>({
    baseUrl: o.apiUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${o.apiKey}` },
  });
  const timeout = () => AbortSignal.timeout(60_000);
  const refused = (what: string, r: { response: Response; error?: unknown }) => {
    const e = (r.error as { error?: { code?: string; message?: string } } | undefined)?.error;
    process.stderr.write(
      `close ${o.programId} ${o.period}: ${what} refused (${r.response.status} ${e?.code ?? ''}: ${e?.message ?? ''})\n`,
    );
    return 1;
  };
  const me = await api.GET('/v1/whoami', { signal: timeout() });
  if (!me.data) return refused('the key was', me);
  if (o.as !== undefined && o.as !== me.data.principal) {
    process.stderr.write(
      `close ${o.programId} ${o.period}: --as ${o.as}, but the key is ${me.data.principal}'s: a close is started as the key's principal (use ${o.as}'s own key)\n`,
    );
    return 1;
  }
  const started = await api.POST('/v1/programs/{programId}/closes', {
    params: {
      path: { programId: o.programId },
      // one key per invocation: running the command again asks again (and finds the close started)
      header: { 'idempotency-key': `cli-close:${randomUUID()}` },
    },
    body: { period: o.period, ...(o.override ? { redemptionRateOverride: o.override } : {}) },
    signal: timeout(),
  });
  if (!started.data) return refused('the start was', started);
  const workflowId = started.data.workflowId;
  if (started.data.status === 'started')
    process.stdout.write(
      `close ${o.programId} ${o.period}: started as ${started.data.startedBy} (workflow ${workflowId})\n`,
    );
  else
    process.stdout.write(
      `close ${o.programId} ${o.period}: already ${started.data.status}, started by ${started.data.startedBy} (workflow ${workflowId})\n`,
    );
  let last: CloseStep | null = null;
  const deadline = Date.now() + o.waitMs;
  for (;;) {
    const got = await api.GET('/v1/programs/{programId}/closes/{period}', {
      params: { path: { programId: o.programId, period: o.period } },
      signal: timeout(),
    });
    // the close's row is written by its first step: until then it reads `starting` (a 404 from an
    // API of before that answer: the same), which is its freeze under way
    if (!got.data && got.response.status !== 404) return refused('reading the close was', got);
    const answered = got.data?.step as CloseStep | 'starting' | undefined;
    const step: CloseStep = answered === undefined || answered === 'starting' ? 'freezing' : answered;
    if (step !== last) process.stdout.write(`  ${new Date().toISOString().slice(11, 19)} ${STEP_TEXT[step] ?? step}\n`);
    last = step;
    if (step === 'awaiting_approval' || step === 'escalated') {
      const p = got.data?.proposal as { totalCatchUpMinor?: number | string; cohorts?: unknown[] } | null;
      process.stdout.write(
        `  catch-up proposed: ${p?.totalCatchUpMinor ?? 0} (minor units) over ${p?.cohorts?.length ?? 0} cohort(s)\n`,
      );
      process.stdout.write(
        `  approve: POST /v1/programs/${o.programId}/closes/${o.period}/approve as a controller other than ${got.data?.startedBy}\n`,
      );
      return 0;
    }
    if (step === 'locked' || step === 'cancelled') return 0;
    if (Date.now() > deadline) {
      process.stdout.write(
        `  still ${STEP_TEXT[step] ?? step} after ${o.waitMs / 1000} s; it goes on in Temporal (workflow ${workflowId})\n`,
      );
      return 0;
    }
    await new Promise((r) => setTimeout(r, 500));
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
