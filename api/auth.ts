import type { FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import { findPrincipal, hashKey, type Principal, type Role } from '../db/keys';
import { ApiError } from '../domain/errors';
import { BoundedLru } from './program-cache';

const CACHE_TTL_MS = 10_000;
const CACHE_MAX_ENTRIES = 10_000;

/**
 * Failed authentication, counted in memory per client address and per key prefix (the `ll_<keyId>`
 * part of a secret): past `maxFailures` within `windowMs`, the next attempt from that address or on
 * that prefix is refused with 429 `too_many_failed_attempts` and `Retry-After` before any database
 * lookup, until the window that counted them ends. A key already known good (in the cache) is
 * never refused. At most `maxTracked` addresses and prefixes are tracked (least recently failing
 * forgotten first), so a flood of addresses cannot grow the map without bound.
 */
export interface AuthThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxTracked: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { maxFailures: 20, windowMs: 60_000, maxTracked: 10_000 };

export class FailedAuthThrottle {
  private readonly buckets: BoundedLru<string, { failures: number; since: number }>;

  constructor(
    readonly o: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new BoundedLru(o.maxTracked);
  }

  /** How many addresses and prefixes are tracked now. */
  get tracked(): number {
    return this.buckets.size;
  }

  /** Seconds until `keys` may try again, or 0 when none of them is past its limit. */
  retryAfterSeconds(keys: string[]): number {
    const now = this.now();
    let wait = 0;
    for (const k of keys) {
      const b = this.buckets.get(k);
      if (!b) continue;
      if (now - b.since >= this.o.windowMs) {
        this.buckets.delete(k);
        continue;
      }
      if (b.failures >= this.o.maxFailures) wait = Math.max(wait, Math.ceil((b.since + this.o.windowMs - now) / 1000));
    }
    return wait;
  }

  fail(keys: string[]): void {
    const now = this.now();
    for (const k of keys) {
      const b = this.buckets.get(k);
      if (!b || now - b.since >= this.o.windowMs) this.buckets.set(k, { failures: 1, since: now });
      else b.failures++;
    }
  }
}

/** The part of a secret that names its key (`ll_<keyId>`), else its first 12 characters: guesses at one key share it. */
export function keyPrefix(secret: string): string {
  const m = /^ll_[^_]{1,64}/.exec(secret);
  return m ? m[0] : secret.slice(0, 12);
}

/** Resolves bearer keys to principals, with a short cache so the hot path does not hit the database. */
export class Authenticator {
  private cache = new BoundedLru<string, { principal: Principal | null; at: number }>(CACHE_MAX_ENTRIES);

  /** throttle: without one (tests' APIs), failures are not counted; `loyalty api` and `npm start` always pass one */
  constructor(
    private readonly pool: Pool,
    private readonly throttle?: FailedAuthThrottle,
  ) {}

  /**
   * The principal of the request's key; refused (403 program_not_allowed) when the route names a
   * program (its `:programId`) that the key is not for. Every program route authenticates here, so
   * this one check scopes every one of them.
   */
  async principalOf(req: FastifyRequest): Promise<Principal> {
    const header = req.headers.authorization;
    const principal = await this.principalOfSecret(header?.startsWith('Bearer ') ? header.slice(7).trim() : '', req.ip);
    const programId = (req.params as { programId?: unknown } | undefined)?.programId;
    if (typeof programId === 'string') requireProgram(principal, programId);
    return principal;
  }

  /** The principal of a key given some other way than the header (the codec cookie, api/routes/codec.ts). */
  async principalOfSecret(secret: string, address = 'unknown'): Promise<Principal> {
    // no key at all costs no lookup: 401, not counted
    if (!secret) throw new ApiError(401, 'unauthorized', 'send Authorization: Bearer <api key>');
    const h = hashKey(secret);
    const now = Date.now();
    let hit = this.cache.get(h);
    if (hit?.principal && now - hit.at <= CACHE_TTL_MS) return hit.principal;
    const buckets = [`addr:${address}`, `key:${keyPrefix(secret)}`];
    const wait = this.throttle?.retryAfterSeconds(buckets) ?? 0;
    if (wait > 0)
      throw new ApiError(429, 'too_many_failed_attempts', 'too many failed authentications: try again later', {
        retryAfterSeconds: wait,
      });
    if (secret.length > 200) {
      this.throttle?.fail(buckets);
      throw new ApiError(401, 'unauthorized', 'unknown or revoked API key');
    }
    if (!hit || now - hit.at > CACHE_TTL_MS) {
      // an unknown key's lookup matches no row: nothing is written (db/keys.ts findPrincipal)
      hit = { principal: await findPrincipal(this.pool, secret), at: now };
      this.cache.set(h, hit);
    }
    if (!hit.principal) {
      this.throttle?.fail(buckets);
      throw new ApiError(401, 'unauthorized', 'unknown or revoked API key');
    }
    return hit.principal;
  }
}

/** Refuses a key limited to other programs (403 program_not_allowed). */
export function requireProgram(principal: Principal, programId: string): void {
  if (principal.programs === null || principal.programs.includes(programId)) return;
  throw new ApiError(403, 'program_not_allowed', `this key is not for program ${programId}`, {
    principal: principal.name,
    programId,
  });
}

/**
 * Refuses a principal holding none of `allowed` (403 forbidden). `admin` runs the system and so
 * passes every operational check, but not a decision (`o.decision`: approving or rejecting a close,
 * an adjustment, a merge, a rule change): that needs a person who holds the role itself, so that
 * segregation of duties is between two people each in their own role (issue 14, item 5).
 */
export function requireRole(principal: Principal, allowed: readonly Role[], o: { decision?: boolean } = {}): void {
  if (o.decision) {
    if (!principal.roles.some((r) => allowed.includes(r)))
      throw new ApiError(
        403,
        'forbidden',
        `this decision needs one of the roles: ${allowed.join(', ')} (admin does not stand in for them)`,
        { principal: principal.name, allowed },
      );
    if (principal.kind !== 'person')
      throw new ApiError(403, 'decision_needs_person', 'a decision is made by a person, not a service key', {
        principal: principal.name,
        allowed,
      });
    return;
  }
  if (principal.roles.includes('admin') || principal.roles.some((r) => allowed.includes(r))) return;
  throw new ApiError(403, 'forbidden', `this needs one of the roles: ${allowed.join(', ')}`, {
    principal: principal.name,
    allowed,
  });
}

// the log redaction lives in domain/log-redaction.ts, shared with the worker and the CLI
export { LOG_REDACT } from '../domain/log-redaction';
