import {
  AccessChangeError,
  accessReview,
  createKey,
  createPrincipal,
  listKeys,
  listPrincipals,
  PRINCIPAL_ID,
  PRINCIPAL_KINDS,
  revokeKey,
  rotateKey,
  ROLES,
  updatePrincipal,
  type PrincipalKind,
  type Role,
} from '../db/keys';
import { createPool } from '../db/pool';

const withPool = async <T>(
  databaseUrl: string,
  fn: (pool: ReturnType<typeof createPool>) => Promise<T>,
): Promise<T> => {
  const pool = createPool({
    connectionString: databaseUrl,
    maxConnections: 2,
    applicationName: 'loyalty-keys',
    actor: `cli:${process.env.USER ?? 'unknown'}`,
  });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
};

export function parseRoles(csv: string): Role[] {
  const roles = csv
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || unknown.length)
    throw new Error(
      `--roles takes a comma-separated list of ${ROLES.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
    );
  return [...new Set(roles)] as Role[];
}

/** `--programs a,b` (only those programs) or `all`/absent (every program). */
export function parsePrograms(csv: string | undefined): string[] | null {
  if (csv === undefined || csv.trim() === 'all') return null;
  const ids = csv
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new Error('--programs takes a comma-separated list of program ids, or all');
  return ids;
}

/** A refused access change as one line with its code, not a stack trace. */
const explain = (e: unknown): never => {
  if (e instanceof AccessChangeError) throw new Error(`${e.code}: ${e.message}`);
  throw e;
};

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** `loyalty keys create|list|rotate|revoke`: the key's secret is printed once, at creation or rotation. */
export async function runKeys(
  action: string,
  o: { databaseUrl: string; principal?: string; roles?: string; programs?: string; keyId?: string; json: boolean },
): Promise<number> {
  return withPool(o.databaseUrl, async (pool) => {
    switch (action) {
      case 'create': {
        if (!o.principal || !PRINCIPAL_ID.test(o.principal))
          throw new Error('--principal <id> is required (printable, at most 128 characters)');
        const { key, secret } = await createKey(pool, {
          principal: o.principal,
          roles: parseRoles(o.roles ?? ''),
          programs: parsePrograms(o.programs),
        }).catch(explain);
        if (o.json) out({ ...key, secret });
        else
          process.stdout.write(
            `key ${key.keyId} for ${key.principal} (${key.roles.join(', ')}; ${key.programs ? `programs ${key.programs.join(', ')}` : 'every program'})\nsecret (shown once): ${secret}\n`,
          );
        return 0;
      }
      case 'list': {
        const keys = await listKeys(pool);
        if (o.json) out(keys);
        else
          for (const k of keys)
            process.stdout.write(
              `${k.keyId.padEnd(18)} ${k.principal.padEnd(20)} ${k.roles.join(',').padEnd(24)} created ${k.createdAt} last used ${k.lastUsedAt ?? 'never'}${k.revokedAt ? ` REVOKED ${k.revokedAt}` : ''}\n`,
            );
        return 0;
      }
      case 'rotate': {
        const r = await rotateKey(pool, o.keyId ?? '');
        if (!r) {
          process.stderr.write(`no active key ${o.keyId}\n`);
          return 1;
        }
        if (o.json) out({ ...r.key, secret: r.secret, revoked: r.revoked.keyId });
        else
          process.stdout.write(
            `key ${r.revoked.keyId} revoked; new key ${r.key.keyId} for ${r.key.principal} (${r.key.roles.join(', ')})\nsecret (shown once): ${r.secret}\n`,
          );
        return 0;
      }
      case 'revoke': {
        const k = await revokeKey(pool, o.keyId ?? '');
        if (!k) {
          process.stderr.write(`no key ${o.keyId}\n`);
          return 1;
        }
        if (o.json) out(k);
        else
          process.stdout.write(
            `key ${k.keyId} of ${k.principal} revoked at ${k.revokedAt} (cached principals expire within 10 s)\n`,
          );
        return 0;
      }
      default:
        throw new Error(`keys: unknown action ${action} (create, list, rotate, revoke)`);
    }
  });
}

/** `loyalty access-review`: who holds which role, through which active keys, last used when. */
export async function runAccessReview(o: { databaseUrl: string; json: boolean }): Promise<number> {
  return withPool(o.databaseUrl, async (pool) => {
    const rows = await accessReview(pool);
    if (o.json) {
      out(rows);
      return 0;
    }
    process.stdout.write(`access review, ${new Date().toISOString()}: ${rows.length} principal(s)\n`);
    for (const r of rows) {
      process.stdout.write(
        `${r.principal.padEnd(20)} ${r.kind.padEnd(8)} ${r.roles.join(', ').padEnd(30)} ${r.activeKeys} key(s), last used ${r.lastUsedAt ?? 'never'}${r.disabled ? ' DISABLED' : ''}\n`,
      );
      for (const k of r.keys)
        process.stdout.write(
          `    ${k.keyId.padEnd(18)} ${k.roles.join(',').padEnd(24)} ${k.programs ? `programs ${k.programs.join(',')}` : 'every program'} created ${k.createdAt} last used ${k.lastUsedAt ?? 'never'}\n`,
        );
    }
    return 0;
  });
}

/**
 * `loyalty principals add|list|roles|disable|enable`: the people and services keys belong to. A
 * principal's id is what every record it makes names and what segregation of duties compares, so
 * it is never reused or deleted: disable it instead.
 */
export async function runPrincipals(
  action: string,
  o: {
    databaseUrl: string;
    principalId?: string;
    kind?: string;
    roles?: string;
    displayName?: string;
    json: boolean;
  },
): Promise<number> {
  return withPool(o.databaseUrl, async (pool) => {
    const id = o.principalId ?? '';
    const print = (p: Awaited<ReturnType<typeof listPrincipals>>[number]) =>
      o.json
        ? out(p)
        : process.stdout.write(
            `${p.principalId.padEnd(20)} ${p.kind.padEnd(8)} ${p.roles.join(',').padEnd(30)} ${p.displayName ?? ''}${p.disabledAt ? ` DISABLED ${p.disabledAt}` : ''}\n`,
          );
    switch (action) {
      case 'add': {
        if (!(PRINCIPAL_KINDS as readonly string[]).includes(o.kind ?? ''))
          throw new Error(`--kind is ${PRINCIPAL_KINDS.join(' or ')}`);
        print(
          await createPrincipal(pool, {
            principalId: id,
            kind: o.kind as PrincipalKind,
            roles: parseRoles(o.roles ?? ''),
            displayName: o.displayName ?? null,
          }).catch(explain),
        );
        return 0;
      }
      case 'list': {
        const all = await listPrincipals(pool);
        if (o.json) out(all);
        else all.forEach(print);
        return 0;
      }
      case 'roles':
      case 'disable':
      case 'enable': {
        const p = await updatePrincipal(
          pool,
          id,
          action === 'roles' ? { roles: parseRoles(o.roles ?? '') } : { disabled: action === 'disable' },
        );
        if (!p) {
          process.stderr.write(`no principal ${id}\n`);
          return 1;
        }
        print(p);
        return 0;
      }
      default:
        throw new Error(`principals: unknown action ${action} (add, list, roles, disable, enable)`);
    }
  });
}
