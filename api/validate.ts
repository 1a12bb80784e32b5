import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../domain/errors';
import { idempotencyKeyHeader } from '../domain/schemas';

/** Parses with a zod schema; failures become 400 validation_failed listing every problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  throw new ApiError(400, 'validation_failed', `invalid ${where}`, {
    issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

export function idempotencyKey(req: FastifyRequest): string {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined)
    throw new ApiError(400, 'validation_failed', 'the Idempotency-Key header is required on this request');
  return parse(idempotencyKeyHeader, Array.isArray(raw) ? raw[0] : raw, 'Idempotency-Key header');
}

/** A stable hash of what a request asks for: the route and the body with its keys sorted. */
export function requestHash(route: string, body: unknown): string {
  return createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
