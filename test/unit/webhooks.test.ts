import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { test } from 'vitest';
import {
  createWebhookSchema,
  isPrivateAddress,
  isPrivateHost,
  retryDelayMs,
  signatureHeader,
  verifySignature,
  WEBHOOK_LIMITS,
} from '../../domain/webhooks';

test('the signature is HMAC-SHA256 of "<t>.<body>", hex; a second secret adds a second v1=', () => {
  const body = '{"id":"e-1"}';
  const header = signatureHeader(body, ['s1'], 1_700_000_000);
  const hex = createHmac('sha256', 's1').update(`1700000000.${body}`).digest('hex');
  assert.equal(header, `t=1700000000,v1=${hex}`);
  const two = signatureHeader(body, ['s2', 's1'], 1_700_000_000);
  assert.equal(two.split(',').length, 3);
  assert.ok(verifySignature(body, two, 's1', 1_700_000_000) && verifySignature(body, two, 's2', 1_700_000_000));
});

test('verification refuses another body, another secret, a stale t, a malformed header', () => {
  fc.assert(
    fc.property(fc.string(), fc.string({ minLength: 1 }), fc.integer({ min: 1e9, max: 2e9 }), (body, secret, t) => {
      const h = signatureHeader(body, [secret], t);
      assert.ok(verifySignature(body, h, secret, t));
      assert.ok(!verifySignature(`${body}x`, h, secret, t));
      assert.ok(!verifySignature(body, h, `${secret}x`, t));
      assert.ok(!verifySignature(body, h, secret, t + WEBHOOK_LIMITS.signatureToleranceSeconds + 1));
      assert.ok(!verifySignature(body, h.replace(/v1=[0-9a-f]+/, 'v1=zz'), secret, t));
      assert.ok(!verifySignature(body, 'garbage', secret, t));
    }),
  );
});

test('retries: exponential from 5 s, capped at 1 h, jitter within [half, full]; 24 h holds at least 25 attempts', () => {
  assert.equal(retryDelayMs(1, 0), 2_500);
  assert.equal(retryDelayMs(1, 0.999_999), 5_000);
  assert.equal(retryDelayMs(2, 0), 5_000);
  assert.ok(Math.abs(retryDelayMs(40, 0.999_999) - 3_600_000) <= 2);
  assert.equal(retryDelayMs(40, 0), 1_800_000);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 0.999_999, noNaN: true }), (n, r) => {
      const d = retryDelayMs(n, r);
      const exp = Math.min(3_600_000, 5_000 * 2 ** (n - 1));
      assert.ok(d >= exp / 2 - 1 && d <= exp + 1);
    }),
  );
  let t = 0;
  let attempts = 1;
  while (t < WEBHOOK_LIMITS.retryHorizonMs) t += retryDelayMs(attempts++, 0.999_999);
  assert.ok(attempts >= 25, `${attempts}`);
});

test('private, loopback, link-local and reserved targets are recognised; public ones are not', () => {
  for (const ip of [
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
  ])
    assert.ok(isPrivateAddress(ip), ip);
  for (const ip of ['8.8.8.8', '93.184.216.34', '172.32.0.1', '2606:4700::1111']) assert.ok(!isPrivateAddress(ip), ip);
  for (const h of ['localhost', 'a.localhost', 'metadata.google.internal', 'printer.local', '[::1]', '127.1.2.3'])
    assert.ok(isPrivateHost(h), h);
  assert.ok(!isPrivateHost('hooks.example.com'));
});

test('the create schema: http(s) with a host, no credentials, known distinct events, bounded', () => {
  const ok = { url: 'https://hooks.example.com/x', events: ['points.earned'] };
  assert.ok(createWebhookSchema.safeParse(ok).success);
  for (const bad of [
    { ...ok, url: 'ftp://hooks.example.com/x' },
    { ...ok, url: 'https://a:b@hooks.example.com/x' },
    { ...ok, url: `https://hooks.example.com/${'x'.repeat(2048)}` },
    { ...ok, events: [] },
    { ...ok, events: ['points.earned', 'points.earned'] },
    { ...ok, events: ['nope'] },
    { ...ok, extra: 1 },
  ])
    assert.ok(!createWebhookSchema.safeParse(bad).success, JSON.stringify(bad).slice(0, 80));
});
