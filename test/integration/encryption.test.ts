import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { memberWorkflowId } from '../../domain/workflow-ids';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { AesGcmCodec, ENCODING, newKeyFile } from '../../temporal/codec';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Payload encryption end to end: a worker and a client with the codec run a member workflow and a
// redemption saga on the real dev server; the raw histories, read from the server without the
// codec, hold no member id, invoice id or amount in clear (outside the workflow ids and search
// attributes, which are identifiers by design). The API's codec routes decode them for support only.
const UI_ORIGIN = 'http://localhost:8233';
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  const keys = newKeyFile('k-test');
  const codec = new AesGcmCodec(keys.active, { 'k-test': Buffer.from(keys.keys['k-test']!, 'base64') });
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 11);
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
    codec,
  });
  api = await startApi(
    pool,
    async () => true,
    { client: worker.client, taskQueue: worker.taskQueue },
    { codec: { codec, corsOrigins: [UI_ORIGIN] } },
  );
  call = httpClient(api);
});
afterAll(async () => {
  await api.close();
  await worker.stop();
  await sims.close();
  await db.drop();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Proto = any;

/** Every event of a workflow's history, as the server stores it (no codec on this path). */
async function rawHistory(workflowId: string): Promise<Proto[]> {
  const events: Proto[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await worker.client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId },
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return events;
}

/**
 * The history's bytes and strings, minus the workflow ids and search attributes (readable on
 * purpose: they are how engineers find a member's or an invoice's workflows), and its payloads.
 */
function scan(
  node: Proto,
  out: { text: Array<{ path: string; bytes: Buffer }>; payloads: Proto[] },
  key = '',
  path = '',
): void {
  if (node === null || node === undefined || key === 'searchAttributes' || key === 'workflowId') return;
  if (typeof node === 'string') out.text.push({ path, bytes: Buffer.from(node) });
  else if (node instanceof Uint8Array) out.text.push({ path, bytes: Buffer.from(node) });
  else if (Array.isArray(node)) node.forEach((n, i) => scan(n, out, key, `${path}[${i}]`));
  else if (typeof node === 'object') {
    if (node.metadata && 'data' in node) out.payloads.push({ ...node, path });
    for (const [k, v] of Object.entries(node)) scan(v, out, k, `${path}.${k}`);
  }
}

test('raw histories hold no member id, invoice id or amount in clear; every payload is encrypted', async () => {
  const programId = uniqueId('enc');
  const memberId = uniqueId('member');
  const invoiceId = uniqueId('invoice');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT2S' }) })).status,
    201,
  );
  const earn = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId,
      invoiceId: `${invoiceId}-earn`,
      amountMinor: 734_519_000,
      occurredAt: new Date().toISOString(),
      jurisdiction: 'US-CA',
    },
  });
  assert.equal(earn.status, 201, JSON.stringify(earn.body));
  await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
    { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8_137_052 }] },
    `inv-${invoiceId}`,
  );
  const redeemed = await call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: {
      invoiceId,
      memberId,
      points: 2_913_407,
      invoiceTotalMinor: 8_137_052,
      occurredAt: new Date().toISOString(),
    },
  });
  assert.equal(redeemed.status, 201, JSON.stringify(redeemed.body));
  assert.equal(redeemed.body.status, 'applied');
  const saga = worker.client.workflow.getHandle(redeemed.body.workflowId);
  assert.equal((await saga.result()).status, 'applied', 'the client with the codec reads the result back');
  const memberWf = memberWorkflowId(programId, memberId);
  await eventually('the member workflow armed', async () => {
    const { rows } = await pool.query('select armed_deadline from members where program_id = $1 and member_id = $2', [
      programId,
      memberId,
    ]);
    return rows[0]?.armed_deadline;
  });

  let payloadCount = 0;
  for (const workflowId of [memberWf, redeemed.body.workflowId as string]) {
    const out = { text: [] as Array<{ path: string; bytes: Buffer }>, payloads: [] as Proto[] };
    scan(await rawHistory(workflowId), out);
    // Amounts of seven digits or more: a history's random ids (run ids, request ids, the test's own
    // hex ids) hold a given four-digit string by chance now and then.
    for (const clear of [
      memberId,
      invoiceId,
      '734519000',
      '2913407',
      '8137052',
      'memberId',
      'invoiceId',
      'amountMinor',
      'points',
    ]) {
      const at = out.text.find((t) => t.bytes.includes(clear));
      assert.equal(at, undefined, `${JSON.stringify(clear)} in clear in the history of ${workflowId}, at ${at?.path}`);
    }
    // Three payloads are not ours to encrypt, and carry no member data: a local activity's marker
    // holds the SDK's own bookkeeping (activity type, attempt, times) in `details.data`, and a
    // patch marker the patch's name (`patched()`) in `details.patch-data`, both written by the core
    // SDK outside the codec (the activity's result is encrypted); and the correlation-id header is
    // an opaque request id (headers do not go through the codec). All are still searched above.
    const ours = out.payloads.filter(
      (p) =>
        !/(markerRecordedEventAttributes\.details\.(data|patch-data)\.payloads\[0\]|header\.fields\.correlation-id)$/.test(
          p.path,
        ),
    );
    for (const p of ours)
      assert.equal(
        Buffer.from(p.metadata.encoding ?? []).toString(),
        ENCODING,
        `a payload of ${workflowId} is not encrypted: ${p.path} ${Buffer.from(p.data ?? []).toString()}`,
      );
    assert.ok(out.payloads.length >= 2, `${workflowId}: payloads found (${out.payloads.length})`);
    payloadCount += out.payloads.length;
  }
  assert.ok(payloadCount >= 10, `payloads checked: ${payloadCount}`);

  // The codec server: support decodes (as the Temporal UI would), billing may not, nobody without a key.
  const started = (await rawHistory(memberWf))[0].workflowExecutionStartedEventAttributes.input.payloads[0];
  const body = {
    payloads: [
      {
        metadata: Object.fromEntries(
          Object.entries(started.metadata).map(([k, v]) => [k, Buffer.from(v as Uint8Array).toString('base64')]),
        ),
        data: Buffer.from(started.data).toString('base64'),
      },
    ],
  };
  const decoded = await call('POST', '/codec/decode', { role: 'support', body, headers: { origin: UI_ORIGIN } });
  assert.equal(decoded.status, 200, JSON.stringify(decoded.body));
  assert.equal(decoded.headers.get('access-control-allow-origin'), UI_ORIGIN);
  assert.ok(
    Buffer.from(decoded.body.payloads[0].data, 'base64').toString().includes(memberId),
    'support sees the member id',
  );
  // a page that also holds a payload written in clear (before encryption) still decodes: the codec
  // server shows it as it is, though the workers' codec refuses it
  const clear = {
    metadata: { encoding: Buffer.from('json/plain').toString('base64') },
    data: Buffer.from('"written in clear"').toString('base64'),
  };
  const mixed = await call('POST', '/codec/decode', {
    role: 'support',
    body: { payloads: [body.payloads[0], clear] },
  });
  assert.equal(mixed.status, 200, JSON.stringify(mixed.body));
  assert.equal(Buffer.from(mixed.body.payloads[1].data, 'base64').toString(), '"written in clear"');
  assert.equal((await call('POST', '/codec/decode', { role: 'billing', body })).status, 403);
  assert.equal((await call('POST', '/codec/decode', { key: null, body })).status, 401);
  // A key is never taken from a URL (paths end up in access logs, proxies' logs, browser history).
  const inPath = await call('POST', `/codec/k/${api.keys.support}/decode`, { key: null, body });
  assert.equal(inPath.status, 404, 'no route takes the key in its path');
  // The UI's way (no identity provider): a cookie that the browser sends with "Include cross-origin
  // credentials", set from the Authorization header at /codec/session.
  const session = await call('POST', '/codec/session', { role: 'support', idem: null });
  assert.equal(session.status, 204, JSON.stringify(session.body));
  const setCookie = session.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^loyalty_codec_key=[^;]+; /);
  for (const attribute of [/; Path=\/codec(;|$)/, /; HttpOnly(;|$)/, /; SameSite=Strict(;|$)/, /; Max-Age=\d+/])
    assert.match(setCookie, attribute);
  assert.doesNotMatch(setCookie, /Secure/, 'plain http here');
  const behindTls = await call('POST', '/codec/session', {
    role: 'support',
    idem: null,
    headers: { 'x-forwarded-proto': 'https' },
  });
  assert.match(behindTls.headers.get('set-cookie') ?? '', /; Secure(;|$)/, 'Secure behind a TLS proxy');
  const cookie = setCookie.split(';')[0]!;
  const byCookie = await call('POST', '/codec/decode', { key: null, body, headers: { cookie, origin: UI_ORIGIN } });
  assert.equal(byCookie.status, 200, 'the cookie alone decodes');
  assert.equal(
    byCookie.headers.get('access-control-allow-credentials'),
    'true',
    'the browser may send it cross-origin',
  );
  assert.equal(
    (await call('POST', '/codec/session', { role: 'billing', idem: null })).status,
    403,
    'no cookie for a key that may not decode',
  );
  assert.equal((await call('POST', '/codec/session', { key: null, idem: null })).status, 401);
  const billingCookie = `loyalty_codec_key=${encodeURIComponent(api.keys.billing)}`;
  assert.equal(
    (await call('POST', '/codec/decode', { key: null, body, headers: { cookie: billingCookie } })).status,
    403,
    'the cookie is checked like the header: a billing key still may not decode',
  );
  assert.equal((await call('GET', '/codec/session', { key: null })).status, 200, 'the page that sets it');
  const reencoded = await call('POST', '/codec/encode', { role: 'support', body: decoded.body });
  assert.equal(reencoded.status, 200);
  assert.equal(Buffer.from(reencoded.body.payloads[0].metadata.encoding, 'base64').toString(), ENCODING);
  const garbage = await call('POST', '/codec/decode', {
    role: 'support',
    body: { payloads: [{ ...body.payloads[0], data: Buffer.from('not it').toString('base64') }] },
  });
  assert.deepEqual([garbage.status, garbage.body.error.code], [422, 'codec_failed']);

  // CORS: the UI's origin is allowed to call from a browser; another origin is not.
  const preflight = await fetch(`${api.baseUrl}/codec/decode`, {
    method: 'OPTIONS',
    headers: { origin: UI_ORIGIN, 'access-control-request-method': 'POST' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), UI_ORIGIN);
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
  const stranger = await fetch(`${api.baseUrl}/codec/decode`, {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  assert.equal(stranger.headers.get('access-control-allow-origin'), null);
});
