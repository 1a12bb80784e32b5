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
  /**
   * Also take the key from the path, `/codec/k/<key>/decode`: for the local dev server's UI, which
   * sends no Authorization header without an identity provider. Never on in a deployment.
   */
  keyInPath: boolean;
}

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
  const cors = (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (origin && o?.corsOrigins.includes(origin)) {
      reply
        .header('access-control-allow-origin', origin)
        .header('vary', 'origin')
        .header('access-control-allow-credentials', 'true');
    }
  };
  const run = (op: 'encode' | 'decode', keyFromPath: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    cors(req, reply);
    if (keyFromPath && !o?.keyInPath) throw new ApiError(404, 'not_found', 'no such route');
    const principal = keyFromPath
      ? await ctx.auth.principalOfSecret((req.params as { key: string }).key)
      : await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['support']);
    if (!o)
      throw new ApiError(
        503,
        'codec_not_configured',
        'this API runs without a payload codec (LOYALTY_CODEC_KEYS_FILE)',
      );
    const body = parse(bodySchema, req.body, 'payloads');
    try {
      return { payloads: (await o.codec[op](body.payloads.map(toPayload))).map(toJson) };
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
    app.post(`/codec/${op}`, { bodyLimit: MAX_BODY_BYTES }, run(op, false));
    app.options(`/codec/${op}`, preflight);
    app.post(`/codec/k/:key/${op}`, { bodyLimit: MAX_BODY_BYTES }, run(op, true));
    app.options(`/codec/k/:key/${op}`, preflight);
  }
}
