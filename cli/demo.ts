/**
 * `loyalty demo redemption`: the redemption saga, step by step, against the stack `npm start` runs.
 *   1. a redemption applied: the credit line in billing, the points spent;
 *   2. the GL refuses the journal entry: the saga compensates (credit reversed, points back);
 *   3. a lost chargeback on the first redemption: reversed, and the points earned on it clawed back.
 * It talks HTTP only (the API as billing would, the billing and GL simulators), checks what each
 * step should have done, and prints the Temporal UI link of every workflow it touches.
 * Exit codes: 0 all as expected, 1 an expectation failed, 2 the stack is not there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BillingInvoice } from '../activities/services/billing';
import type { StackConfig } from './config';

export interface DemoOptions {
  apiUrl: string;
  /** one key for every call (it needs the admin role: the demo creates a program) */
  key?: string;
  /** where `npm start` keeps the dev keys; read when no key is given */
  keysFile: string;
  billingUrl: string;
  glUrl: string;
  uiUrl: string;
  namespace: string;
}

/** The defaults point at what `npm start` runs with the same environment (cli/config.ts). */
export function demoDefaults(cfg: StackConfig): Omit<DemoOptions, 'key'> {
  return {
    apiUrl: `http://127.0.0.1:${cfg.apiPort}`,
    keysFile: join(cfg.dataDir, 'dev-keys.json'),
    billingUrl: `http://127.0.0.1:${cfg.simulatorPorts.billing}`,
    glUrl: `http://127.0.0.1:${cfg.simulatorPorts.gl}`,
    uiUrl: `http://localhost:${cfg.temporalUiPort}`,
    namespace: cfg.namespace,
  };
}

/** The stack is not running, or not all of it (exit 2). */
class StackUnreachable extends Error {}
/** A call answered what the demo did not expect; the steps after it cannot go on (exit 1). */
class UnexpectedAnswer extends Error {}

const say = (line = '') => process.stdout.write(line + '\n');
const usd = (minor: number) => `${(minor / 100).toFixed(2)} USD`;
const pts = (n: number) => `${n.toLocaleString('en-US')} pts`;

// ---------------------------------------------------------------------------------------------
// HTTP

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function request(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  o: { key?: string; body?: unknown; idem?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  if (o.idem) headers['idempotency-key'] = o.idem;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const timeoutMs = o.timeoutMs ?? 10_000;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    // No connection means the stack is not running; a timeout means it is, and did not answer.
    if ((e as Error).name === 'TimeoutError')
      throw new UnexpectedAnswer(`${method} ${url}: no answer within ${timeoutMs / 1000} s`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new StackUnreachable(`${method} ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the text for the message */
  }
  return { status: res.status, body };
}

/** The body of an answer with the expected status; anything else stops the step. */
function expectStatus(a: Answer, status: number, what: string) {
  if (a.status !== status)
    throw new UnexpectedAnswer(`${what}: expected HTTP ${status}, got ${a.status} ${JSON.stringify(a.body)}`);
  return a.body;
}

// ---------------------------------------------------------------------------------------------
// The API (as billing calls it) and the simulators

interface Member {
  balance: number;
  held: number;
  available: number;
  workflowId: string;
}
interface Redemption {
  status: string;
  reason: string | null;
  pointsApplied: number;
  creditMinor: number;
  workflowId: string;
}
interface LedgerEntry {
  type: string;
  points: number;
  reference: string;
}

/** The loyalty API for one program and member; each POST gets an Idempotency-Key of this run. */
function loyaltyApi(baseUrl: string, keys: { admin: string; billing: string }, programId: string, memberId: string) {
  let posts = 0;
  const base = `${baseUrl}/v1/programs/${programId}`;
  // A redemption answers once the saga has decided, compensations included: give it time.
  const post = (url: string, body: unknown, key: string) =>
    request('POST', url, { key, body, idem: `${programId}:${++posts}`, timeoutMs: 60_000 });
  const get = (path: string) => request('GET', base + path, { key: keys.billing });
  return {
    programId,
    memberId,
    createProgram: async () =>
      expectStatus(await post(`${baseUrl}/v1/programs`, programBody(programId), keys.admin), 201, 'POST /v1/programs'),
    accrue: async (invoiceId: string, amountMinor: number): Promise<{ points: number; balance: number }> =>
      expectStatus(
        await post(
          `${base}/accruals`,
          { memberId, invoiceId, amountMinor, occurredAt: new Date().toISOString(), jurisdiction: 'US-CA' },
          keys.billing,
        ),
        201,
        `POST accruals (${invoiceId})`,
      ),
    redeem: async (invoiceId: string, points: number, invoiceTotalMinor: number): Promise<Redemption> =>
      expectStatus(
        await post(
          `${base}/redemptions`,
          { invoiceId, memberId, points, invoiceTotalMinor, occurredAt: new Date().toISOString() },
          keys.billing,
        ),
        201,
        `POST redemptions (${invoiceId})`,
      ),
    chargeback: async (invoiceId: string, chargebackId: string, status: 'opened' | 'lost') =>
      expectStatus(
        await post(`${base}/chargebacks`, { invoiceId, chargebackId, status }, keys.billing),
        202,
        `POST chargebacks (${chargebackId} ${status})`,
      ),
    redemption: async (invoiceId: string): Promise<Redemption> =>
      expectStatus(await get(`/redemptions/${invoiceId}`), 200, `GET redemptions/${invoiceId}`),
    member: async (): Promise<Member> =>
      expectStatus(await get(`/members/${memberId}`), 200, `GET members/${memberId}`),
    ledger: async (): Promise<LedgerEntry[]> =>
      expectStatus(await get(`/members/${memberId}/ledger`), 200, `GET members/${memberId}/ledger`).entries,
  };
}
type LoyaltyApi = ReturnType<typeof loyaltyApi>;

function programBody(programId: string) {
  return {
    programId,
    name: `Demo ${programId}`,
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 10, perAmountMinor: 100 }, // 10 pts per dollar, a point worth a cent: 10% back
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'rolling', window: 'P365D' },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 100, maxInvoiceShare: 1.0, cohortOrder: 'oldest_first' },
    // Long: the first redemption's saga must still be open (in its window) for step 3's chargeback.
    chargebackWindow: 'P120D',
  };
}

function billingSim(baseUrl: string, programId: string) {
  return {
    createInvoice: async (
      invoiceId: string,
      lines: Array<{ description: string; amountMinor: number }>,
    ): Promise<BillingInvoice> =>
      expectStatus(
        await request('POST', `${baseUrl}/invoices`, {
          body: { invoiceId, customerId: `${programId}-customer`, currency: 'USD', lines },
          idem: `create:${invoiceId}`,
        }),
        201,
        `billing POST /invoices (${invoiceId})`,
      ),
    invoice: async (invoiceId: string): Promise<BillingInvoice> =>
      expectStatus(
        await request('GET', `${baseUrl}/invoices/${encodeURIComponent(invoiceId)}`),
        200,
        `billing GET /invoices/${invoiceId}`,
      ),
  };
}

/** The GL simulator's fault injection (simulators/faults.ts): the saga's last step, refused. */
function glFaults(baseUrl: string) {
  return {
    // 422: the adapter treats a 4xx as final, so the step fails at once, without retries.
    refuseNextPost: async () =>
      expectStatus(
        await request('POST', `${baseUrl}/admin/faults`, {
          body: { operation: 'post_entry', failNext: 1, failStatus: 422 },
        }),
        200,
        'GL POST /admin/faults',
      ),
    clear: async () => expectStatus(await request('DELETE', `${baseUrl}/admin/faults`), 200, 'GL DELETE /admin/faults'),
  };
}

/** Polls until fn returns a value; throws (an expectation failure) after timeoutMs. */
async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const value = await fn();
    if (value !== undefined) return { value, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs)
      throw new UnexpectedAnswer(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------------------------------------
// What is printed and checked

/** Every expectation is printed as it is checked; a failed one is kept for the summary. */
class Checks {
  readonly failed: string[] = [];
  step = '';

  expect(ok: boolean, what: string, got?: unknown): void {
    const detail = ok || got === undefined ? '' : ` (got ${JSON.stringify(got)})`;
    say(`  ${ok ? 'ok  ' : 'FAIL'} ${what}${detail}`);
    if (!ok) this.failed.push(`${this.step}: ${what}${detail}`);
  }
}

interface Demo {
  api: LoyaltyApi;
  billing: ReturnType<typeof billingSim>;
  gl: ReturnType<typeof glFaults>;
  checks: Checks;
  /** the Temporal UI page of a workflow */
  link: (workflowId: string) => string;
  invoices: { purchase: string; redeemed: string; refused: string };
}

function printWorkflows(d: Demo, redemptionWorkflowId: string, memberWorkflowId: string): void {
  say(`  workflow  ${redemptionWorkflowId}`);
  say(`            ${d.link(redemptionWorkflowId)}`);
  say(`  member    ${memberWorkflowId}`);
  say(`            ${d.link(memberWorkflowId)}`);
}

function printInvoice(inv: BillingInvoice): void {
  say(
    `  billing invoice ${inv.invoiceId}: total ${usd(inv.totalMinor)}, credits ${usd(inv.creditsMinor)}, amount due ${usd(inv.amountDueMinor)}`,
  );
  for (const c of inv.credits) {
    say(
      `    credit "${c.description}" ${usd(c.amountMinor)}, applied ${c.appliedAt}${c.reversedAt ? `, reversed ${c.reversedAt}` : ''}`,
    );
  }
}

const printMember = (label: string, m: Member) =>
  say(`  member ${label}: balance ${pts(m.balance)}, held ${pts(m.held)}, available ${pts(m.available)}`);

/** The member's ledger entries about one invoice (references look like `invoice:<id>[:...]`). */
const entriesOf = (ledger: LedgerEntry[], invoiceId: string) =>
  ledger.filter((e) => e.reference.split(':').includes(invoiceId));

// ---------------------------------------------------------------------------------------------
// The three steps

const PURCHASE_MINOR = 50_000; // earns 5,000 pts
const REDEEMED = {
  points: 2_500,
  lines: [
    { description: 'Plan', amountMinor: 6_000 },
    { description: 'Add-on', amountMinor: 2_000 },
  ],
};
const REFUSED = { points: 1_000, lines: [{ description: 'Plan', amountMinor: 4_000 }] };
const total = (lines: Array<{ amountMinor: number }>) => lines.reduce((s, l) => s + l.amountMinor, 0);

/** Step 1: the program, the invoices, a purchase, and a redemption applied. Returns the balance before it. */
async function stepApplied(d: Demo): Promise<{ applied: boolean; balanceBefore: number }> {
  say('== Step 1: a redemption applied ==');
  await d.api.createProgram();
  say(`  program ${d.api.programId}: 10 pts per 1.00 USD, a point worth 0.01 USD, chargeback window P120D`);
  // The saga reads the invoice from billing (the tax step) and credits it, so billing must know it.
  await d.billing.createInvoice(d.invoices.purchase, [{ description: 'Annual plan', amountMinor: PURCHASE_MINOR }]);
  await d.billing.createInvoice(d.invoices.redeemed, REDEEMED.lines);
  await d.billing.createInvoice(d.invoices.refused, REFUSED.lines);
  say(
    `  billing: invoices ${d.invoices.purchase} (${usd(PURCHASE_MINOR)}), ${d.invoices.redeemed} (${usd(total(REDEEMED.lines))}), ${d.invoices.refused} (${usd(total(REFUSED.lines))})`,
  );
  const earned = await d.api.accrue(d.invoices.purchase, PURCHASE_MINOR);
  say(
    `  accrual: ${d.api.memberId} earned ${pts(earned.points)} on ${d.invoices.purchase}; balance ${pts(earned.balance)}`,
  );

  say(`  POST redemptions: ${pts(REDEEMED.points)} against ${d.invoices.redeemed}`);
  const r = await d.api.redeem(d.invoices.redeemed, REDEEMED.points, total(REDEEMED.lines));
  say(
    `  -> ${r.status}${r.reason ? ` (${r.reason})` : ''}: pointsApplied ${r.pointsApplied}, creditMinor ${r.creditMinor} (${usd(r.creditMinor)})`,
  );
  const inv = await d.billing.invoice(d.invoices.redeemed);
  printInvoice(inv);
  // The member pays what is left of the invoice, and that earns points: step 3 claws them back.
  const paid = await d.api.accrue(d.invoices.redeemed, inv.amountDueMinor);
  say(`  accrual: the ${usd(inv.amountDueMinor)} paid on ${d.invoices.redeemed} earned ${pts(paid.points)}`);
  const m = await d.api.member();
  printMember('now', m);
  printWorkflows(d, r.workflowId, m.workflowId);

  d.checks.expect(r.status === 'applied', 'the redemption is applied', r);
  d.checks.expect(
    r.pointsApplied === REDEEMED.points && r.creditMinor === REDEEMED.points,
    `${pts(REDEEMED.points)} applied as a ${usd(REDEEMED.points)} credit`,
    r,
  );
  d.checks.expect(
    inv.amountDueMinor === inv.totalMinor - REDEEMED.points,
    'billing shows the credit line on the invoice',
    inv.amountDueMinor,
  );
  d.checks.expect(
    m.balance === earned.balance - REDEEMED.points + paid.points && m.held === 0,
    'the points are spent, none left held',
    m,
  );
  return { applied: r.status === 'applied', balanceBefore: earned.balance };
}

/** Step 2: the GL refuses the saga's last step; every step done before it is compensated. */
async function stepCompensated(d: Demo): Promise<void> {
  say('== Step 2: the GL refuses the journal entry, the saga compensates ==');
  const before = await d.api.member();
  printMember('before', before);
  await d.gl.refuseNextPost();
  say('  GL simulator: the next post_entry answers 422 (a 4xx is final: no retries)');
  let r: Redemption;
  try {
    say(`  POST redemptions: ${pts(REFUSED.points)} against ${d.invoices.refused}`);
    r = await d.api.redeem(d.invoices.refused, REFUSED.points, total(REFUSED.lines));
  } finally {
    await d.gl.clear(); // the stack is shared: leave no fault behind, whatever happened
    say('  GL simulator: faults cleared');
  }
  say(`  -> ${r.status}: reason ${r.reason}`);
  const inv = await d.billing.invoice(d.invoices.refused);
  printInvoice(inv);
  const after = await d.api.member();
  printMember('after', after);
  const entries = entriesOf(await d.api.ledger(), d.invoices.refused);
  say(
    `  ledger on ${d.invoices.refused}: ${entries.map((e) => `${e.type} ${e.points > 0 ? '+' : ''}${e.points}`).join(', ') || '(none)'}`,
  );
  printWorkflows(d, r.workflowId, after.workflowId);

  d.checks.expect(r.status === 'declined' && Boolean(r.reason), 'the redemption is declined, with a reason', r);
  d.checks.expect(
    inv.credits.length === 1 && Boolean(inv.credits[0]?.reversedAt),
    'the credit applied in billing was reversed',
    inv.credits,
  );
  d.checks.expect(inv.amountDueMinor === inv.totalMinor, 'the invoice is due in full again', inv.amountDueMinor);
  d.checks.expect(
    after.balance === before.balance && after.held === before.held,
    "the member's balance and held points are unchanged",
    after,
  );
}

/** Step 3: a chargeback on the first redemption, opened then lost: reversed, earned points clawed back. */
async function stepChargebackLost(d: Demo, balanceBeforeRedemption: number): Promise<void> {
  say('== Step 3: a lost chargeback on the first redemption ==');
  const chargebackId = `${d.api.programId}-cb-1`;
  printMember('before', await d.api.member());
  await d.api.chargeback(d.invoices.redeemed, chargebackId, 'opened');
  say(`  POST chargebacks ${chargebackId} opened -> 202 (the saga freezes its chargeback window)`);
  await d.api.chargeback(d.invoices.redeemed, chargebackId, 'lost');
  say(`  POST chargebacks ${chargebackId} lost -> 202 (the saga runs the reversal)`);
  const reversed = await until(`GET redemptions/${d.invoices.redeemed} to say reversed`, async () => {
    const r = await d.api.redemption(d.invoices.redeemed);
    return r.status === 'reversed' ? r : undefined;
  });
  say(
    `  GET redemptions/${d.invoices.redeemed} -> ${reversed.value.status} (${reversed.value.reason}) after ${(reversed.ms / 1000).toFixed(1)} s`,
  );
  // The status turns `reversed` at the reversal's first step; the claw-back is its last.
  const clawBack = await until('the claw-back of the points earned on the invoice', async () =>
    (await d.api.ledger()).find(
      (e) => e.type === 'earn_reversal' && e.reference.includes(`chargeback:${chargebackId}`),
    ),
  );
  say(`  ledger: ${clawBack.value.type} ${clawBack.value.points} (${clawBack.value.reference})`);
  const m = await d.api.member();
  printMember(`after (${pts(REDEEMED.points)} back, ${pts(-clawBack.value.points)} clawed back)`, m);
  const inv = await d.billing.invoice(d.invoices.redeemed);
  printInvoice(inv);
  printWorkflows(d, reversed.value.workflowId, m.workflowId);

  d.checks.expect(
    m.balance === balanceBeforeRedemption && m.held === 0,
    `the balance is back to ${pts(balanceBeforeRedemption)}: the redeemed points returned, the earned ones clawed back`,
    m,
  );
  d.checks.expect(
    inv.credits.every((c) => c.reversedAt) && inv.amountDueMinor === inv.totalMinor,
    'billing shows the credit reversed, the invoice due in full',
    inv,
  );
}

// ---------------------------------------------------------------------------------------------
// Running it

/** The API (ready: Temporal and PostgreSQL reachable), billing and the GL must all answer. */
async function preflight(o: DemoOptions): Promise<void> {
  const ready = await request('GET', `${o.apiUrl}/readyz`);
  if (ready.status !== 200)
    throw new StackUnreachable(`the API at ${o.apiUrl} is not ready: ${JSON.stringify(ready.body)}`);
  for (const [service, url] of [
    ['billing', o.billingUrl],
    ['gl', o.glUrl],
  ] as const) {
    const health = await request('GET', `${url}/healthz`);
    if (health.body?.service !== service)
      throw new StackUnreachable(`${url} is not the ${service} simulator: ${JSON.stringify(health.body)}`);
  }
}

/** --key for every call; else the dev keys of `npm start`, each call with the role it needs. */
function apiKeys(o: DemoOptions): { admin: string; billing: string } {
  if (o.key) return { admin: o.key, billing: o.key };
  if (!existsSync(o.keysFile)) throw new StackUnreachable(`no API keys in ${o.keysFile} (or pass --key)`);
  const keys = JSON.parse(readFileSync(o.keysFile, 'utf8')) as Record<string, string>;
  const admin = keys['dev-admin'];
  const billing = keys['dev-billing'];
  if (!admin || !billing) throw new StackUnreachable(`${o.keysFile} has no dev-admin or dev-billing key`);
  return { admin, billing };
}

function newDemo(o: DemoOptions): Demo {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .toLowerCase(); // 20261122182400123
  const programId = `demo-${stamp}`;
  const ui = o.uiUrl.replace(/\/+$/, '');
  return {
    api: loyaltyApi(o.apiUrl.replace(/\/+$/, ''), apiKeys(o), programId, 'm-1'),
    billing: billingSim(o.billingUrl.replace(/\/+$/, ''), programId),
    gl: glFaults(o.glUrl.replace(/\/+$/, '')),
    checks: new Checks(),
    link: (id) => `${ui}/namespaces/${encodeURIComponent(o.namespace)}/workflows/${encodeURIComponent(id)}`,
    // invoice ids are global in billing: the program id keeps them apart across runs
    invoices: { purchase: `${programId}-inv-1`, redeemed: `${programId}-inv-2`, refused: `${programId}-inv-3` },
  };
}

/** The steps in order; a step that cannot go on stops the demo, since the later ones build on it. */
async function runSteps(d: Demo): Promise<void> {
  d.checks.step = 'step 1 (applied)';
  const first = await stepApplied(d);
  say();
  d.checks.step = 'step 2 (compensated)';
  await stepCompensated(d);
  say();
  d.checks.step = 'step 3 (chargeback lost)';
  if (!first.applied) return d.checks.expect(false, "step 1's redemption is applied, so it can be charged back");
  await stepChargebackLost(d, first.balanceBefore);
}

/** Runs the demo; returns the exit code. */
export async function runRedemptionDemo(o: DemoOptions): Promise<number> {
  let demo: Demo | undefined;
  try {
    await preflight(o).catch((e: Error) => {
      throw e instanceof UnexpectedAnswer ? new StackUnreachable(e.message) : e; // a stack that does not answer is not there
    });
    demo = newDemo(o);
    await runSteps(demo);
  } catch (e) {
    if (e instanceof StackUnreachable) {
      process.stderr.write(`demo redemption: the stack is not reachable (${e.message}): run npm start first\n`);
      return 2;
    }
    if (!(e instanceof UnexpectedAnswer) || !demo) throw e;
    demo.checks.failed.push(`${demo.checks.step}: ${e.message}`);
  }
  say();
  if (demo.checks.failed.length === 0) {
    say('demo redemption: all three steps behaved as expected');
    return 0;
  }
  say(`demo redemption: FAILED, ${demo.checks.failed.length} expectation(s) not met:`);
  for (const f of demo.checks.failed) say(`  - ${f}`);
  return 1;
}
