import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, test } from 'vitest';
import { chromiumPath } from '../../cli/stack/binaries';
import { principalKey, programBody, startCloseStack, uniqueId, type CloseStack } from '../helpers/stack';

// The console (console/, served at /console/) in Debian's Chromium, driven by Playwright, against the
// real API, worker, Temporal and PostgreSQL. Each step asserts on what a user reads, never pixels.
// LOYALTY_CONSOLE_SCREENSHOTS=<folder> saves a screenshot of each page (docs/console/ holds them).

let stack: CloseStack;
let browser: Browser;
let programId: string;
const PERIOD = '2026-Q3';
const shots = process.env.LOYALTY_CONSOLE_SCREENSHOTS;

beforeAll(async () => {
  // the console as the source is now (the API serves console/dist, built by npm install)
  const build = spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build-console.js')], {
    encoding: 'utf8',
  });
  assert.equal(build.status, 0, build.stderr);
  stack = await startCloseStack(17);
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
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

async function signIn(key: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${stack.api.baseUrl}/console/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();
  return page;
}

async function shot(page: Page, name: string) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

test('a wrong key is refused in words, and nothing of it is kept', async () => {
  const page = await browser.newPage();
  await page.goto(`${stack.api.baseUrl}/console/`);
  await page.getByLabel('API key').fill('ll_nokey_notasecret');
  await page.getByRole('button', { name: 'Sign in' }).click();
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
  const item = inbox.getByRole('listitem', { name: `Quarterly close ${PERIOD} in ${programId}` });
  await item.waitFor();
  assert.match(await item.innerText(), new RegExp(`Requested by ${starter.principal}`));
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
  assert.equal(await page.getByTestId('balance').innerText(), new Intl.NumberFormat('en-US').format(2500));
  const timeline = page.getByRole('list', { name: 'Ledger timeline, newest first' });
  assert.match(await timeline.innerText(), /earn\s+\+2,500 points · invoice:inv-1 · by /);
  // within the threshold: applied at once, the balance read again
  await page.getByLabel('Points').fill('10');
  await page.getByLabel('Comment').fill('apology');
  await page.getByRole('button', { name: 'Adjust' }).click();
  await page.getByRole('status').filter({ hasText: 'Applied: 10 points' }).waitFor();
  await page.getByTestId('balance').filter({ hasText: '2,510' }).waitFor();
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
  const item = inbox.getByRole('listitem', { name: `Manual adjustment ${adjustmentId} in ${programId}` });
  await item.waitFor();
  assert.match(await item.innerText(), /late delivery/);
  assert.match(await item.innerText(), /1,500/);
  await inbox.close();
});
