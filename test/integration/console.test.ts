import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { chromiumPath } from '../../cli/stack/binaries';
import { eventually, principalKey, programBody, startCloseStack, uniqueId, type CloseStack } from '../helpers/stack';

// The console (console/, served at /console/) in Debian's Chromium, driven by Playwright, against the
// real API, worker, Temporal and PostgreSQL. Each step asserts on what a user reads, never pixels.
// LOYALTY_CONSOLE_SCREENSHOTS=<folder> saves a screenshot of each page (docs/console/ holds them).

let stack: CloseStack;
let browser: Browser;
let programId: string;
const PERIOD = '2026-Q3';
const REDEEMED_AT = '2026-08-20T12:00:00Z';
/** the Temporal UI the API tells the console of (GET /console/config.json): its links go there */
const TEMPORAL_UI = 'http://temporal-ui.test:8080';
const usd = (minor: number, locale = 'en-US') =>
  new Intl.NumberFormat(locale, { style: 'currency', currency: 'USD' }).format(minor / 100);
const shots = process.env.LOYALTY_CONSOLE_SCREENSHOTS;
const cspViolations: string[] = [];

beforeAll(async () => {
  // the console as the source is now (the API serves console/dist, built by npm install)
  const build = spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build-console.js')], {
    encoding: 'utf8',
  });
  assert.equal(build.status, 0, build.stderr);
  stack = await startCloseStack(17, { console: { temporalUiUrl: TEMPORAL_UI, namespace: 'loyalty-ns' } });
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  programId = uniqueId('console');
  const { call } = stack;
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
  const earn = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId: 'm-1',
      invoiceId: 'inv-1',
      amountMinor: 250_000,
      occurredAt: '2026-08-14T10:00:00Z',
      jurisdiction: 'US-CA',
    },
  });
  assert.equal(earn.status, 201, JSON.stringify(earn.body));
  // a redemption (the saga against billing's simulator) and a reconciled day, for the dashboard and the member page
  await billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 }).createInvoice(
    { invoiceId: 'inv-r1', customerId: 'm-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 100_000 }] },
    'inv-inv-r1',
  );
  const redeemed = await call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId: 'inv-r1', memberId: 'm-1', points: 500, invoiceTotalMinor: 100_000, occurredAt: REDEEMED_AT },
  });
  assert.equal(redeemed.body.status, 'applied', JSON.stringify(redeemed.body));
  const run = await call('POST', `/v1/programs/${programId}/reconciliations`, {
    role: 'finance',
    body: { date: REDEEMED_AT.slice(0, 10) },
  });
  assert.equal(run.status, 200, JSON.stringify(run.body));
}, 120_000);
afterAll(async () => {
  assert.deepEqual(cspViolations, []);
  await browser?.close();
  await stack?.stop();
});

async function signIn(key: string, locale = 'en-US'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, locale, acceptDownloads: true });
  // the console under its strict CSP (no inline style or script): a violation is a console error
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${stack.api.baseUrl}/console/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();
  return page;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A chart's figures, as a user reads them: the table under its "Figures" disclosure, opened. */
async function figures(page: Page, chart: string) {
  const table = page.getByTestId(`${chart}-figures`);
  await page.locator('figure', { has: table }).getByText('Figures', { exact: true }).click();
  await table.waitFor();
  return table;
}

async function shot(page: Page, name: string) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

test('a wrong key is refused in words, and nothing of it is kept', async () => {
  const page = await browser.newPage();
  await page.goto(`${stack.api.baseUrl}/console/`);
  // by keyboard alone: the key field comes first, Enter signs in (once the page is drawn, as a
  // person sees it: the console renders after reading its config.json)
  await page.getByLabel('API key').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate('document.activeElement.id'), 'api-key');
  await page.keyboard.type('ll_nokey_notasecret');
  await page.keyboard.press('Enter');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /not accepted|too many/i);
  // (an expression: the browser's globals are not the test's)
  const stored = (await page.evaluate(
    '[localStorage.length, sessionStorage.length, document.cookie, location.href]',
  )) as [number, number, string, string];
  assert.deepEqual(stored.slice(0, 3), [0, 0, '']);
  assert.doesNotMatch(String(stored[3]), /ll_/);
  await page.close();
});

test('finance starts a close and sees it wait; its starter may not approve it; another controller does, from the inbox', async () => {
  // one person holding both roles: the API's segregation of duties refuses them the approval
  const starter = await principalKey(stack.pool, ['finance', 'controller'], { principal: uniqueId('ana') });
  const page = await signIn(starter.key);
  await page.getByRole('button', { name: 'Close', exact: true }).click();
  await page.getByLabel('Program').fill(programId);
  await page.getByLabel('Period').fill(PERIOD);
  await page.getByRole('button', { name: 'Start close' }).click();
  await page.locator('[data-testid=close-status], [role=alert]').first().waitFor();
  assert.equal(await page.getByRole('alert').count(), 0, await page.getByRole('alert').allInnerTexts().then(String));
  // it follows the steps live, until it waits for a controller's approval
  await page.getByTestId('close-status').filter({ hasText: 'awaiting_approval' }).waitFor({ timeout: 60_000 });
  // the draft report the approver decides on: the API's figures, in dollars; its files to download
  const report = (await stack.call('GET', `/v1/programs/${programId}/closes/${PERIOD}/report`, { role: 'finance' }))
    .body;
  await page.getByRole('heading', { name: `Report ${PERIOD} (draft, ${report.status})` }).waitFor();
  const rollForward = await figures(page, `rollforward-${PERIOD}`);
  assert.match(
    await rollForward.locator('tr', { hasText: 'Closing' }).innerText(),
    new RegExp(escape(usd(report.liability.closingMinor))),
  );
  assert.match(
    await rollForward.locator('tr', { hasText: 'Issued' }).innerText(),
    new RegExp(escape(usd(report.liability.issuedMinor))),
  );
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'CSV' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `loyalty-liability-${programId}-${PERIOD}.csv`);
  const csv = await stack.call('GET', `/v1/programs/${programId}/closes/${PERIOD}/report?format=csv`, {
    role: 'finance',
  });
  assert.equal(readFileSync((await download.path())!, 'utf8'), csv.body as string);
  await shot(page, 'close');
  await page.getByRole('button', { name: 'Approve close' }).click();
  const refusal = page.getByRole('alert');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /You requested this close yourself; another person/);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  await page.close();

  const other = await principalKey(stack.pool, ['controller'], { principal: uniqueId('ben') });
  const inbox = await signIn(other.key);
  await inbox.getByRole('button', { name: 'Approval inbox' }).click();
  const item = inbox.getByRole('listitem', { name: `Quarterly close ${PERIOD} in ${programId}` });
  await item.waitFor();
  assert.match(await item.innerText(), new RegExp(`Requested by ${starter.principal}`));
  // the evidence to decide: the proposal's estimates, the steps so far and the draft report
  await item.getByText('The proposal, its steps and the draft report').click();
  const proposal = item.getByRole('table', { name: `Proposal of close ${PERIOD}` });
  await proposal.waitFor();
  assert.match(await proposal.locator('tr', { hasText: '2026-Q3' }).innerText(), /80%\s+80%\s+prior estimate kept/);
  assert.match(
    await item.getByRole('list', { name: `Steps of close ${PERIOD}` }).innerText(),
    /Breakage re-estimated and proposed/,
  );
  await item.getByRole('heading', { name: `Report ${PERIOD} (draft, proposed)` }).waitFor();
  await shot(inbox, 'inbox');
  await item.getByRole('button', { name: 'Approve' }).click();
  await inbox.getByRole('status').waitFor();
  assert.match(await inbox.getByRole('status').innerText(), new RegExp(`Decided: Quarterly close ${PERIOD}`));
  const close = await stack.call('GET', `/v1/programs/${programId}/closes/${PERIOD}`, { role: 'controller' });
  assert.equal(close.body.status, 'locked', JSON.stringify(close.body));
  await inbox.close();
});

test("support looks up a member and reads the timeline; an adjustment above the threshold waits in finance's inbox", async () => {
  const support = await principalKey(stack.pool, ['support'], { principal: uniqueId('sam') });
  const page = await signIn(support.key);
  await page.getByRole('button', { name: 'Members' }).click();
  await page.getByLabel('Program').fill(programId);
  await page.getByLabel('Member id').fill('m-1');
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.getByTestId('balance').waitFor();
  assert.equal(await page.getByTestId('balance').innerText(), new Intl.NumberFormat('en-US').format(2000));
  const timeline = page.getByRole('list', { name: 'Ledger timeline, newest first' });
  assert.match(await timeline.innerText(), /earn\s+\+2,500 points · invoice:inv-1 · by /);
  // the member's redemptions, with the invoice's saga in the Temporal UI
  const redemption = page.getByRole('table', { name: 'Redemptions' }).locator('tr', { hasText: 'inv-r1' });
  // amounts are drawn once the program's currency is read (an ellipsis until then), as a person waits
  await redemption.filter({ hasText: usd(500) }).waitFor();
  assert.match(await redemption.innerText(), new RegExp(`applied\\s+500\\s+${escape(usd(500))}`));
  assert.match(
    (await redemption.getByRole('link').getAttribute('href'))!,
    new RegExp(
      `^${escape(TEMPORAL_UI)}/namespaces/loyalty-ns/workflows/${escape(encodeURIComponent(`redemption:${programId}:inv-r1`))}$`,
    ),
  );
  // within the threshold: applied at once, the balance read again
  await page.getByLabel('Points').fill('10');
  await page.getByLabel('Comment').fill('apology');
  await page.getByRole('button', { name: 'Adjust' }).click();
  await page.getByRole('status').filter({ hasText: 'Applied: 10 points' }).waitFor();
  await page.getByTestId('balance').filter({ hasText: '2,010' }).waitFor();
  // above the program's threshold (1,000 points by default, counted with the 10 just moved): it
  // needs a finance approval
  await page.getByLabel('Points').fill('1500');
  await page.getByLabel('Comment').fill('late delivery');
  await page.getByRole('button', { name: 'Adjust' }).click();
  const waiting = page.getByRole('status').filter({ hasText: 'awaits a finance approval' });
  await waiting.waitFor();
  const adjustmentId = /adjustment (\S+) awaits/.exec(await waiting.innerText())![1]!;
  await shot(page, 'member');
  await page.close();

  const finance = await principalKey(stack.pool, ['finance'], { principal: uniqueId('fay') });
  const inbox = await signIn(finance.key);
  await inbox.getByRole('button', { name: 'Approval inbox' }).click();
  const item = inbox.getByRole('listitem', { name: `Manual adjustment ${adjustmentId} in ${programId}` });
  await item.waitFor();
  assert.match(await item.innerText(), /late delivery/);
  assert.match(await item.innerText(), /1,500/);
  await inbox.close();
});

test("finance's dashboard: the liability now and by day, points by month, burn rate, the cohorts' curves, reconciled days", async () => {
  const finance = await principalKey(stack.pool, ['finance'], { principal: uniqueId('fin') });
  const liability = (await stack.call('GET', `/v1/programs/${programId}/liability`, { role: 'finance' })).body;
  for (const locale of ['en-US', 'de-DE']) {
    const page = await signIn(finance.key, locale);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByLabel('Program').fill(programId);
    await page.getByLabel('From').fill('2026-08-01');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByTestId('deferred-now').waitFor();
    // the program's currency in the user's locale, from the API's integer minor units
    assert.equal(await page.getByTestId('deferred-now').innerText(), usd(liability.deferredRevenueMinor, locale));
    if (locale !== 'en-US') {
      await page.close();
      continue;
    }
    await page.getByText(`(close ${PERIOD})`).waitFor();
    await shot(page, 'dashboard');
    // a narrow window: the page reflows, nothing wider than the window but a table scrolling in its box
    await page.setViewportSize({ width: 390, height: 800 });
    const widths = async () =>
      (await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')) as [number, number];
    await eventually('the page reflowed to the narrow window', async () => {
      const [scroll, inner] = await widths();
      return scroll <= inner ? true : null;
    });
    await page.setViewportSize({ width: 1280, height: 800 });
    assert.equal(await page.getByTestId('burn-rate').innerText(), '20% in Aug 2026');
    assert.equal(await page.getByTestId('cost-per-redemption').innerText(), `${usd(500)} in Aug 2026`);
    const august = (await figures(page, 'points-by-month')).locator('tr', { hasText: 'Aug 2026' });
    assert.match(await august.innerText(), /2,500\s+500\s+0\s+0/);
    const byMonth = page.getByRole('table', { name: 'Redemptions by month' }).locator('tr', { hasText: 'Aug 2026' });
    assert.match(await byMonth.innerText(), new RegExp(`20%\\s+1\\s+0\\s+${escape(usd(500))}\\s+${escape(usd(500))}`));
    // each day's closing liability: the day of the redemption as GET liability answers for it
    const day = (
      await stack.call('GET', `/v1/programs/${programId}/liability?asOf=2026-08-20T23:59:59.999Z`, { role: 'finance' })
    ).body;
    const row = (await figures(page, 'liability-by-day')).locator('tr', { hasText: 'Aug 20, 2026' });
    assert.match(await row.innerText(), new RegExp(escape(usd(day.deferredRevenueMinor))));
    // the breakage estimate per cohort, and its development curves from the locked close
    await page.getByText(`(close ${PERIOD})`).waitFor();
    assert.match(await page.getByRole('table', { name: 'Breakage estimate per cohort' }).innerText(), /2026-Q3/);
    assert.match(
      await page.getByRole('list', { name: 'Reconciliation of recent days' }).innerText(),
      /Aug 20, 2026: reconciled, no differences/,
    );
    assert.match(await page.getByText('None declined.').innerText(), /None declined/);
    await page.close();
  }
});

test('a program owner sees the impact of a rule change before proposing it, then follows it to the approvers', async () => {
  const owner = await principalKey(stack.pool, ['program_owner'], { principal: uniqueId('olga') });
  const page = await signIn(owner.key);
  await page.getByRole('heading', { name: 'Rule changes' }).waitFor();
  await page.getByLabel('Program').fill(programId);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByText('In force: version 1').waitFor();
  await page.getByLabel('Window (ISO 8601, e.g. P12M)').fill('P30D');
  await page.getByRole('button', { name: 'Assess impact' }).click();
  await page.getByTestId('adverse').waitFor();
  assert.equal(await page.getByTestId('adverse').innerText(), 'shorter expiry window');
  const impact = await page.getByRole('article', { name: 'Impact assessment' }).innerText();
  assert.match(impact, /Notice after approval\s+P30D/);
  assert.match(impact, /Approvals needed\s+finance, legal/);
  // nothing is proposed by assessing
  assert.equal(
    (await stack.call('GET', `/v1/programs/${programId}/rule-changes`, { role: 'finance' })).body.items.length,
    0,
  );
  const changeId = await page.getByLabel('Change id').inputValue();
  await shot(page, 'rules');
  await page.getByRole('button', { name: 'Propose this change' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `Proposed as ${changeId}` })
    .waitFor();
  await page
    .getByTestId(`rc-status-${changeId}`)
    .filter({ hasText: 'awaiting approvals' })
    .waitFor({ timeout: 30_000 });
  assert.match(await page.getByRole('list', { name: 'Changes proposed' }).innerText(), /Adverse to members/);
  await page.close();

  const finance = await principalKey(stack.pool, ['finance'], { principal: uniqueId('fred') });
  const inbox = await signIn(finance.key);
  await inbox.getByRole('button', { name: 'Approval inbox' }).click();
  const item = inbox.getByRole('listitem', { name: `Rule change ${changeId} in ${programId}` });
  await item.waitFor();
  await item.getByText('Its impact assessment').click();
  await item.getByTestId('adverse').filter({ hasText: 'shorter expiry window' }).waitFor();
  await inbox.close();
});
