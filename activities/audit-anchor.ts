import type { Pool } from 'pg';
import {
  anchorAuditChains,
  anchorConfigFrom,
  fileAnchorStore,
  lineDigest,
  loadOrCreateAnchorKey,
} from '../db/audit-anchors';

/** What a scheduled checkpoint wrote (null: anchors are off, LOYALTY_AUDIT_ANCHORS=off). */
export interface AnchorWritten {
  database: string;
  at: string;
  chains: number;
  digest: string;
  dir: string;
}

/**
 * The scheduled audit anchor: a signed checkpoint of every chain's head, appended to the anchor
 * store outside the database (db/audit-anchors.ts), with the worker's key (never in PostgreSQL).
 */
export function createAuditAnchorActivities(pool: Pool) {
  return {
    async writeAuditAnchorCheckpoint(q: { label: string }): Promise<AnchorWritten | null> {
      const config = anchorConfigFrom();
      if (!config.enabled) return null;
      const { signed, line } = await anchorAuditChains(pool, {
        store: fileAnchorStore(config.dir),
        key: loadOrCreateAnchorKey(config.keyFile),
        label: q.label,
      });
      return {
        database: signed.checkpoint.database,
        at: signed.checkpoint.at,
        chains: signed.checkpoint.chains.length,
        digest: lineDigest(line),
        dir: config.dir,
      };
    },
  };
}
export type AuditAnchorActivities = ReturnType<typeof createAuditAnchorActivities>;
