import type { FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import { findPrincipal, hashKey, type Principal, type Role } from '../db/keys';
import { ApiError } from '../domain/errors';

const CACHE_TTL_MS = 10_000;
const CACHE_MAX_ENTRIES = 10_000;

/** Resolves bearer keys to principals, with a short cache so the hot path does not hit the database. */
export class Authenticator {
  private cache = new Map<string, { principal: Principal | null; at: number }>();

  constructor(private readonly pool: Pool) {}

  async principalOf(req: FastifyRequest): Promise<Principal> {
    const header = req.headers.authorization;
    return this.principalOfSecret(header?.startsWith('Bearer ') ? header.slice(7).trim() : '');
  }

  /** The principal of a key given some other way than the header (the codec cookie, api/routes/codec.ts). */
  async principalOfSecret(secret: string): Promise<Principal> {
    if (!secret || secret.length > 200) throw new ApiError(401, 'unauthorized', 'send Authorization: Bearer <api key>');
    const h = hashKey(secret);
    const now = Date.now();
    let hit = this.cache.get(h);
    if (!hit || now - hit.at > CACHE_TTL_MS) {
      hit = { principal: await findPrincipal(this.pool, secret), at: now };
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(h, hit);
    }
    if (!hit.principal) throw new ApiError(401, 'unauthorized', 'unknown or revoked API key');
    return hit.principal;
  }
}

export function requireRole(principal: Principal, allowed: readonly Role[]): void {
  if (principal.roles.includes('admin') || principal.roles.some((r) => allowed.includes(r))) return;
  throw new ApiError(403, 'forbidden', `this needs one of the roles: ${allowed.join(', ')}`, {
    principal: principal.name,
    allowed,
  });
}

// the log redaction lives in domain/log-redaction.ts, shared with the worker and the CLI
export { LOG_REDACT } from '../domain/log-redaction';
