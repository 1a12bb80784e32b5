import type { Principal } from '../../db/keys';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { ApiError } from '../../domain/errors';
import type { ApiContext } from '../context';
import { parse } from '../validate';

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
export function codecRoutes(app: FastifyInstance, ctx: ApiContext, o: CodecServerOptions | undefined): void {
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
  const run = (op: 'encode' | 'decode') => async (req: FastifyRequest, reply: FastifyReply) => {
    cors(req, reply);
    const principal = await ctx.auth.principalOfSecret(keyOf(req));
    ctx.requireRole(principal, ['support']);
    requireEveryProgram(principal);
    if (!o)
      throw new ApiError(
        503,
        'codec_not_configured',
        'this API runs without a payload codec (LOYALTY_CODEC_KEYS_FILE)',
      );
    const body = parse(bodySchema, req.body, 'payloads');
    try {
      return { payloads: (await display![op](body.payloads.map(toPayload))).map(toJson) };
    } catch (e) {
      throw new ApiError(422, 'codec_failed', `cannot ${op}: ${(e as Error).message}`);
    }
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
    app.post(`/codec/${op}`, { bodyLimit: MAX_BODY_BYTES }, run(op));
    app.options(`/codec/${op}`, preflight);
  }

  // The browser's way to hold a support key for the UI: this page takes the key in a form (never in
  // the URL) and POSTs it in the Authorization header; the answer sets the cookie. The same origin
  // as /codec, so no CORS is involved, and a page elsewhere cannot set the header.
  app.get('/codec/session', async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      )
      .send(SESSION_PAGE),
  );
  app.post('/codec/session', async (req, reply) => {
    const header = req.headers.authorization;
    const principal = await ctx.auth.principalOfSecret(header?.startsWith('Bearer ') ? header.slice(7).trim() : '');
    ctx.requireRole(principal, ['support']);
    requireEveryProgram(principal);
    // Secure over https, also behind a TLS proxy (X-Forwarded-Proto): trusting the header can only
    // make the cookie stricter
    const secure = req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
    const key = header!.slice(7).trim();
    return reply
      .status(204)
      .header('cache-control', 'no-store')
      .header(
        'set-cookie',
        `${CODEC_COOKIE}=${encodeURIComponent(key)}; Path=/codec; HttpOnly; SameSite=Strict; Max-Age=${CODEC_COOKIE_MAX_AGE_S}${secure}`,
      )
      .send();
  });
  app.delete('/codec/session', async (_req, reply) =>
    reply
      .status(204)
      .header('set-cookie', `${CODEC_COOKIE}=; Path=/codec; HttpOnly; SameSite=Strict; Max-Age=0`)
      .send(),
  );
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
