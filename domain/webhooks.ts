/**
 * Webhooks (issue 15, item 4; docs/api.md, "Webhooks"): the event types, the API's schemas, the
 * signature, the retry schedule and which addresses a webhook may point at. Pure: no I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { NO_NUL_PATTERN } from './patterns';

export const WEBHOOK_EVENT_TYPES = [
  'points.earned',
  'points.revoked',
  'points.expiring_soon',
  'points.expired',
  'member.merged',
  'redemption.applied',
  'redemption.declined',
  'redemption.reversed',
  'adjustment.awaiting_approval',
  'adjustment.applied',
  'close.awaiting_approval',
  'close.locked',
  'rule_change.awaiting_approval',
  'rule_change.activated',
  'reconciliation.differences_found',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A limit on everything a webhook holds or does. */
export const WEBHOOK_LIMITS = {
  perProgram: 20,
  urlLength: 2048,
  descriptionLength: 500,
  /** one attempt's whole answer, headers to last byte (the receiver's 2xx must come within it) */
  attemptTimeoutMs: 10_000,
  /** at most this much of an answer's body is read (and 200 characters of it kept as the error) */
  responseBodyBytes: 4096,
  /** retries stop after this, counted from the first attempt of the series: the delivery is failed */
  retryHorizonMs: 24 * 3600_000,
  firstRetryMs: 5_000,
  maxRetryMs: 3600_000,
  /** the old secret's signature is sent beside the new one this long after a rotation */
  rotationGraceMs: 24 * 3600_000,
  /** how far t may be from the receiver's clock (the docs' snippet) */
  signatureToleranceSeconds: 300,
  deliveriesPage: 100,
} as const;

const freeText = (max: number) => z.string().max(max).regex(NO_NUL_PATTERN, 'no NUL characters');

// A port WHATWG's URL parser takes: 0 to 65535.
const PORT = '(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
// labels of letters and digits joined by single hyphens (no punycode `xn--`, whose decoding may fail),
// the last beginning with a letter (one ending in a number is an IPv4 address to the parser)
const LABEL = '[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*';
const LAST_LABEL = '[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*';
const HOST = `(?:(?:${LABEL}\\.)*${LAST_LABEL}|${OCTET}(?:\\.${OCTET}){3})`;
/**
 * The URLs a webhook may have, as a grammar /openapi.json states (each one parses, by
 * parseWebhookUrl too): http or https, a host name or a dotted IPv4 address, an optional port, then
 * a path, query or fragment of printable ASCII. No credentials, no IPv6 literal.
 */
export const WEBHOOK_URL_PATTERN = new RegExp(`^https?://${HOST}(?::${PORT})?(?:[/?#][\\x21-\\x7e]*)?$`);

export const webhookUrl = z
  .string()
  .max(WEBHOOK_LIMITS.urlLength)
  .regex(WEBHOOK_URL_PATTERN, 'an absolute http or https URL with a host, no credentials')
  .refine((u) => parseWebhookUrl(u) !== null, 'an absolute http or https URL with a host, no credentials');

export const createWebhookSchema = z
  .object({
    url: webhookUrl,
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES))
      .min(1)
      .max(WEBHOOK_EVENT_TYPES.length)
      .refine((e) => new Set(e).size === e.length, 'each event type once')
      .meta({ uniqueItems: true }),
    description: freeText(WEBHOOK_LIMITS.descriptionLength).optional(),
  })
  .strict();
export type CreateWebhook = z.infer<typeof createWebhookSchema>;

const programId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);
export const webhookParams = z.object({ programId, webhookId: z.uuid() }).strict();
export const webhookDeliveryParams = z
  .object({ programId, webhookId: z.uuid(), deliveryId: z.string().regex(/^[1-9][0-9]{0,17}$/) })
  .strict();
export const webhookDeliveriesQuery = z
  .object({
    status: z.enum(['pending', 'delivered', 'failed']).optional(),
    limit: z.coerce.number().int().min(1).max(WEBHOOK_LIMITS.deliveriesPage).default(50),
    /** deliveries with a smaller id than this (newest first) */
    before: z
      .string()
      .regex(/^[1-9][0-9]{0,17}$/)
      .optional(),
  })
  .strict();

/** The answers (named so that the schema-first routes can take them as they are). */
export const webhookCreatedResponse = z.object({
  webhookId: z.uuid(),
  /** shown once: in this answer only (a replay of the request answers secret: null) */
  secret: z.string().nullable(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  description: z.string().nullable(),
  createdAt: z.string(),
});
export const webhookView = z.object({
  webhookId: z.uuid(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  description: z.string().nullable(),
  status: z.enum(['active', 'deleted']),
  createdAt: z.string(),
  createdBy: z.string(),
  secretRotatedAt: z.string().nullable(),
});
export const webhookListResponse = z.object({ items: z.array(webhookView) });
export const webhookRotatedResponse = z.object({
  webhookId: z.uuid(),
  secret: z.string().nullable(),
  /** until then the old secret's signature is sent too (a second v1=) */
  previousSecretValidUntil: z.string(),
});
export const webhookDeliveryView = z.object({
  deliveryId: z.string(),
  eventId: z.uuid(),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  memberId: z.string().nullable(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  nextAttemptAt: z.string().nullable(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  deliveredAt: z.string().nullable(),
  recordedAt: z.string(),
  history: z.array(
    z.object({
      at: z.string(),
      durationMs: z.number().int(),
      statusCode: z.number().int().nullable(),
      error: z.string().nullable(),
      ok: z.boolean(),
    }),
  ),
});
export const webhookDeliveriesResponse = z.object({
  items: z.array(webhookDeliveryView),
  nextBefore: z.string().nullable(),
});

/** What a delivery POSTs: the body is exactly this object's JSON (its bytes are what is signed). */
export interface WebhookPayload {
  id: string;
  type: WebhookEventType;
  occurredAt: string;
  programId: string;
  data: unknown;
}

/** `t=<unix seconds>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of "<t>.<raw body>" with each secret given. */
export function signatureHeader(rawBody: string, secrets: string[], unixSeconds: number): string {
  const sigs = secrets.map((s) => `v1=${createHmac('sha256', s).update(`${unixSeconds}.${rawBody}`).digest('hex')}`);
  return [`t=${unixSeconds}`, ...sigs].join(',');
}

/**
 * The receiver's check (the docs' snippet): some v1= matches the HMAC with `secret`, compared in
 * constant time, and t within toleranceSeconds of `nowSeconds`.
 */
export function verifySignature(
  rawBody: string,
  header: string,
  secret: string,
  nowSeconds: number,
  toleranceSeconds: number = WEBHOOK_LIMITS.signatureToleranceSeconds,
): boolean {
  const parts = header.split(',').map((p) => p.trim().split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return parts
    .filter(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v))
    .some(([, v]) => timingSafeEqual(Buffer.from(v!, 'hex'), expected));
}

/**
 * When to try again after the attempt-th failure (1-based): exponential from firstRetryMs, capped
 * at maxRetryMs, with "equal jitter" (half fixed, half random) so that a receiver that comes back
 * is not hit by every queue at once. `random` in [0, 1).
 */
export function retryDelayMs(
  attempt: number,
  random: number,
  firstMs: number = WEBHOOK_LIMITS.firstRetryMs,
  maxMs: number = WEBHOOK_LIMITS.maxRetryMs,
): number {
  const exp = Math.min(maxMs, firstMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(exp / 2 + (exp / 2) * random);
}

/** The URL parsed, or null when it is not an absolute http(s) URL with a host and no user:password. */
export function parseWebhookUrl(raw: string): URL | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  if (!u.hostname || u.username || u.password) return null;
  return u;
}

/**
 * Whether an IP address is one a webhook must not reach unless the operator allows it
 * (LOYALTY_WEBHOOK_ALLOW_PRIVATE=1): loopback, private (RFC 1918, unique-local), link-local (the
 * cloud metadata address among them), carrier-grade NAT, unspecified, multicast and reserved.
 */
export function isPrivateAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (v === 6) {
    const x = ip.toLowerCase();
    if (x === '::' || x === '::1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(x);
    if (mapped) return isPrivateAddress(mapped[1]!);
    return /^(fc|fd|fe8|fe9|fea|feb|ff)/.test(x);
  }
  return true; // not an address at all: refuse
}

/** A host name that is an address literal, or names this machine, judged before any DNS lookup. */
export function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(h)) return isPrivateAddress(h);
  return h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.internal') || h.endsWith('.local');
}
