import { userInfo } from 'node:os';
import {
  anchorAuditChains,
  anchorConfigFrom,
  fileAnchorStore,
  lineDigest,
  loadOrCreateAnchorKey,
} from '../db/audit-anchors';
import { readAudit } from '../db/audit';
import { createPool } from '../db/pool';
import { auditQuery } from '../domain/schemas';

/** `loyalty audit [--program p] [--member m] [--since t]`: the audit trail, oldest first. */
export async function runAudit(o: {
  databaseUrl: string;
  programId?: string;
  memberId?: string;
  since?: string;
  limit: number;
  json: boolean;
}): Promise<number> {
  const q = auditQuery.safeParse({ memberId: o.memberId, since: o.since, limit: String(o.limit) });
  if (!q.success) throw new Error(q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const pool = createPool({ connectionString: o.databaseUrl, maxConnections: 1, applicationName: 'loyalty-audit' });
  try {
    const rows = await readAudit(pool, {
      programId: o.programId,
      memberId: o.memberId,
      since: o.since,
      limit: o.limit,
    });
    if (o.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      return 0;
    }
    for (const r of rows) {
      const change =
        r.before === null ? JSON.stringify(r.after) : `${JSON.stringify(r.before)} -> ${JSON.stringify(r.after)}`;
      process.stdout.write(
        `${r.at} ${r.actor.padEnd(24)} ${r.action.padEnd(16)} ${r.subject} ${change}${r.idempotencyKey ? ` key=${r.idempotencyKey}` : ''}\n`,
      );
    }
    return 0;
  } finally {
    await pool.end();
  }
}

/**
 * `loyalty audit anchor`: takes a signed checkpoint of every audit chain's head now and appends it
 * to the anchor store (db/audit-anchors.ts); cron it, or let the close and the worker's schedule do it.
 */
export async function runAuditAnchor(o: { databaseUrl: string; label?: string; json: boolean }): Promise<number> {
  const config = anchorConfigFrom();
  if (!config.enabled) throw new Error('LOYALTY_AUDIT_ANCHORS=off: no anchor written');
  const pool = createPool({
    connectionString: o.databaseUrl,
    maxConnections: 1,
    applicationName: 'loyalty-audit-anchor',
  });
  try {
    const { signed, line } = await anchorAuditChains(pool, {
      store: fileAnchorStore(config.dir),
      key: loadOrCreateAnchorKey(config.keyFile),
      label: o.label ?? `cli:${userInfo().username}`,
    });
    if (o.json) process.stdout.write(line + '\n');
    else {
      const c = signed.checkpoint;
      process.stdout.write(
        `anchored ${c.chains.length} chains of ${c.database} at ${c.at} (key ${c.keyId}) in ${config.dir}: ` +
          `${c.chains.map((h) => `${h.chain}:${h.seq}`).join(' ')} digest ${lineDigest(line)}\n`,
      );
    }
    return 0;
  } finally {
    await pool.end();
  }
}
