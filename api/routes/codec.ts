import type { Principal } from '../../db/keys';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { ApiError } from '../../domain/errors';
import type { ApiContext } from '../context';
import { route } from '../route';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** origins of the Temporal UI allowed to call from a browser (CORS) */
  corsOrigins: string[];
}

/**
 * The cookie that carries a support key for the Temporal UI: the UI sends cookies to the codec
 * endpoint when its codec setting "Include cross-origin credentials" is on
 * (TEMPORAL_CODEC_INCLUDE_CREDENTIALS), and nothing else without an identity provider. HttpOnly
 * (no script reads it), SameSite=Strict (no other site makes the browser send it), Path=/codec
 * (sent to nothing else on the host: cookies ignore ports, so the UI's own server would get it too).
 */
export const CODEC_COOKIE = 'loyalty_codec_key';
/** How long the browser keeps the cookie; revoking the key ends it at once anyway. */
const CODEC_COOKIE_MAX_AGE_S = 12 * 3600;

/** Payloads per call, and bytes per call: the UI decodes a page of history at a time. */
const MAX_PAYLOADS = 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const base64 = z
  .string()
  .max(MAX_BODY_BYTES)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const bodySchema = z.object({
  // the Temporal CLI sends `{}` for an empty list
  payloads: z
    .array(z.object({ metadata: z.record(z.string().max(256), base64).optional(), data: base64.optional() }))
    .max(MAX_PAYLOADS)
    .default([]),
});

const payloadsAnswer = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()), data: z.string() })),
});
/** The codec routes take the key from the header or the UI's cookie. */
const CODEC_SECURITY: Array<Record<string, string[]>> = [{ bearer: [] }, { codecCookie: [] }];

const toPayload = (p: z.infer<typeof bodySchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/**
 * The codec server of the Temporal UI and CLI (Temporal's codec server protocol: POST /decode and
 * /encode with `{payloads}`), behind the API's keys: only `support` (and `admin`) see decoded
 * payloads. Without a codec configured the routes answer 503 codec_not_configured.
 */
export function codecRoutes(app: FastifyInstance, _ctx: ApiContext, o: CodecServerOptions | undefined): void {
  // The codec server shows what is there: a page of history may hold payloads written in clear
  // (before encryption, or by a client without the codec), which the workers' codec refuses
  // (temporal/codec.ts); shown as they are, they decode here instead of failing the whole page.
  const withDisplay = o?.codec as (PayloadCodec & { forDisplay?: () => PayloadCodec }) | undefined;
  const display = withDisplay?.forDisplay ? withDisplay.forDisplay() : withDisplay;
  const cors = (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (origin && o?.corsOrigins.includes(origin)) {
      reply
        .header('access-control-allow-origin', origin)
        .header('vary', 'origin')
        .header('access-control-allow-credentials', 'true');
    }
  };
  /**
   * The key of a codec call: `Authorization: Bearer <key>` (the CLI's --codec-auth, a proxy), else
   * the cookie set by POST /codec/session (the UI). Never a URL: paths and query strings end up in
   * access logs, proxies' logs and browser history.
   */
  const keyOf = (req: FastifyRequest): string => {
    const header = req.headers.authorization;
    if (header) return header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    return cookie(req.headers.cookie, CODEC_COOKIE) ?? '';
  };
  const run = (op: 'encode' | 'decode') => async (req: FastifyRequest<{ Body: z.infer<typeof bodySchema> }>) => {
    try {
      return { payloads: (await display![op](req.body.payloads.map(toPayload))).map(toJson) };
    } catch (e) {
      throw new ApiError(422, 'codec_failed', `cannot ${op}: ${(e as Error).message}`);
    }
  };
  // after the key and role (the auth hook), before the body is validated: as before the routes were declared
  const everyProgramAndCodec = async (req: FastifyRequest) => {
    requireEveryProgram(req.principal!);
    if (!o)
      throw new ApiError(
        503,
        'codec_not_configured',
        'this API runs without a payload codec (LOYALTY_CODEC_KEYS_FILE)',
      );
  };
  const preflight = async (req: FastifyRequest, reply: FastifyReply) => {
    cors(req, reply);
    return reply
      .status(204)
      .header('access-control-allow-methods', 'POST')
      .header('access-control-allow-headers', 'authorization, content-type, x-namespace')
      .header('access-control-max-age', '600')
      .send();
  };
  for (const op of ['encode', 'decode'] as const) {
    route(
      app,
      {
        method: 'POST',
        url: `/codec/${op}`,
        summary:
          op === 'decode'
            ? "The Temporal UI's codec server: decrypt payloads (Temporal's codec protocol, {payloads})"
            : "The Temporal UI's codec server: encrypt payloads",
        roles: ['support'],
        credentials: keyOf,
        security: CODEC_SECURITY,
        body: bodySchema,
        bodyLimit: MAX_BODY_BYTES,
        // CORS headers on every answer, refusals included (the UI's browser reads them)
        onRequest: async (req, reply) => cors(req, reply),
        preValidation: everyProgramAndCodec,
        responses: { 200: payloadsAnswer },
        errors: { 403: ['program_not_allowed'], 422: ['codec_failed'], 503: ['codec_not_configured'] },
      },
      run(op),
    );
    route(
      app,
      {
        method: 'OPTIONS',
        url: `/codec/${op}`,
        summary: 'CORS preflight',
        roles: 'none',
        hide: true,
        responses: { 204: z.undefined() },
      },
      preflight,
    );
  }

  // The browser's way to hold a support key for the UI: this page takes the key in a form (never in
  // the URL) and POSTs it in the Authorization header; the answer sets the cookie. The same origin
  // as /codec, so no CORS is involved, and a page elsewhere cannot set the header.
  route(
    app,
    {
      method: 'GET',
      url: '/codec/session',
      summary: 'The page that gives this browser a support key for the Temporal UI (a form; the key never in the URL)',
      roles: 'none',
      responses: { 200: { content: { 'text/html': z.string() }, description: 'the page' } },
    },
    async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header(
          'content-security-policy',
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        )
        .send(SESSION_PAGE),
  );
  route(
    app,
    {
      method: 'POST',
      url: '/codec/session',
      summary: "Hold the request's support key in an HttpOnly cookie for /codec (the Temporal UI's browser)",
      roles: ['support'],
      credentials: bearerOnly,
      preValidation: async (req) => requireEveryProgram(req.principal!),
      responses: { 204: z.undefined() },
      errors: { 403: ['program_not_allowed'] },
    },
    async (req, reply) => {
      // Secure over https, also behind a TLS proxy (X-Forwarded-Proto): trusting the header can only
      // make the cookie stricter
      const secure = req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
      const key = bearerOnly(req);
      return reply
        .status(204)
        .header('cache-control', 'no-store')
        .header(
          'set-cookie',
          `${CODEC_COOKIE}=${encodeURIComponent(key)}; Path=/codec; HttpOnly; SameSite=Strict; Max-Age=${CODEC_COOKIE_MAX_AGE_S}${secure}`,
        )
        .send();
    },
  );
  route(
    app,
    {
      method: 'DELETE',
      url: '/codec/session',
      summary: "Forget this browser's codec cookie",
      roles: 'none',
      responses: { 204: z.undefined() },
    },
    async (_req, reply) =>
      reply
        .status(204)
        .header('set-cookie', `${CODEC_COOKIE}=; Path=/codec; HttpOnly; SameSite=Strict; Max-Age=0`)
        .send(),
  );
}

/** The key of the Authorization header alone (POST /codec/session). */
function bearerOnly(req: FastifyRequest): string {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
}

/** One cookie's value from a Cookie header, or undefined. */
function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

const SESSION_PAGE = `<!doctype html>
<meta charset="utf-8"><title>Loyalty Ledger: decode payloads in the Temporal UI</title>
<style>body{font:15px system-ui;max-width:40em;margin:3em auto}input{width:100%;font:inherit}</style>
<h1>Decode payloads in the Temporal UI</h1>
<p>Paste an API key with the <code>support</code> role. This browser then sends it, as a cookie only
this API's <code>/codec</code> reads, when the Temporal UI asks to decode; in the UI's Codec Server
settings, turn on <em>Include cross-origin credentials</em>. Revoking the key ends it.</p>
<form id="f"><input id="k" type="password" autocomplete="off" placeholder="support API key"> <button>Use this key</button></form>
<p id="out"></p>
<script>
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch('/codec/session', { method: 'POST', headers: { authorization: 'Bearer ' + document.getElementById('k').value.trim() } });
  document.getElementById('out').textContent = r.status === 204 ? 'Done: the Temporal UI can decode now (reload it).' : 'Refused (' + r.status + '): a key with the support role is needed.';
};
</script>
`;

/**
 * Payloads are not marked with their program, so a key limited to some programs could read every
 * program's through the codec: only a key for every program may use it.
 */
function requireEveryProgram(principal: Principal): void {
  if (principal.programs !== null)
    throw new ApiError(
      403,
      'program_not_allowed',
      'the codec needs a key for every program (payloads are not per program)',
      {
        principal: principal.name,
      },
    );
}
