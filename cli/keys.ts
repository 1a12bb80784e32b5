import { accessReview, createKey, listKeys, revokeKey, rotateKey, ROLES, type Role } from '../db/keys';
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

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** `loyalty keys create|list|rotate|revoke`: the key's secret is printed once, at creation or rotation. */
export async function runKeys(
  action: string,
  o: { databaseUrl: string; principal?: string; roles?: string; keyId?: string; json: boolean },
): Promise<number> {
  return withPool(o.databaseUrl, async (pool) => {
    switch (action) {
      case 'create': {
        if (!o.principal || !/^[\x21-\x7e]{1,128}$/.test(o.principal))
          throw new Error('--principal <name> is required (printable, at most 128 characters)');
        const { key, secret } = await createKey(pool, { principal: o.principal, roles: parseRoles(o.roles ?? '') });
        if (o.json) out({ ...key, secret });
        else
          process.stdout.write(
            `key ${key.keyId} for ${key.principal} (${key.roles.join(', ')})\nsecret (shown once): ${secret}\n`,
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
    process.stdout.write(`access review, ${new Date().toISOString()}: ${rows.length} principal(s) with active keys\n`);
    for (const r of rows) {
      process.stdout.write(
        `${r.principal.padEnd(20)} ${r.roles.join(', ').padEnd(30)} ${r.activeKeys} key(s), last used ${r.lastUsedAt ?? 'never'}\n`,
      );
      for (const k of r.keys)
        process.stdout.write(
          `    ${k.keyId.padEnd(18)} ${k.roles.join(',').padEnd(24)} created ${k.createdAt} last used ${k.lastUsedAt ?? 'never'}\n`,
        );
    }
    return 0;
  });
}
