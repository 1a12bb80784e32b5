import {
  anchorConfigFrom,
  anchorViolations,
  checkAuditAnchors,
  fileAnchorStore,
  readAnchorKey,
} from '../db/audit-anchors';
import { createPool } from '../db/pool';
import { verifyInvariants } from '../db/verify';

/**
 * Prints every broken invariant with a few sample rows; returns the exit code (0 clean, 1 violations).
 * Then checks the audit chains against their signed anchors (db/audit-anchors.ts), when this
 * database has any in the anchor store (LOYALTY_AUDIT_ANCHOR_DIR, default under the data folder).
 */
export async function runVerify(databaseUrl: string, json: boolean): Promise<number> {
  const pool = createPool({ connectionString: databaseUrl, maxConnections: 2, applicationName: 'loyalty-verify' });
  try {
    const invariants = await verifyInvariants(pool);
    const config = anchorConfigFrom();
    const anchors = await checkAuditAnchors(pool, {
      store: fileAnchorStore(config.dir),
      key: readAnchorKey(config.keyFile),
    });
    const broken = anchorViolations(anchors);
    const result = {
      checks: invariants.checks + 4,
      violations: [...invariants.violations, ...broken],
      anchors: {
        where: anchors.where,
        database: anchors.database,
        checkpoints: anchors.checkpoints,
        latest: anchors.latest,
      },
    };
    if (json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else {
      process.stdout.write(
        anchors.checkpoints + anchors.badSignatures.length === 0
          ? `anchors: none for database ${anchors.database} in ${anchors.where}: the chains are checked only against their own hashes\n`
          : `anchors: ${anchors.checkpoints} signed checkpoint(s) of database ${anchors.database} in ${anchors.where}, the latest at ${anchors.latest}\n`,
      );
      if (result.violations.length === 0) {
        process.stdout.write(`verify: ${result.checks} invariants hold\n`);
      } else {
        for (const v of result.violations) {
          process.stdout.write(`VIOLATION ${v.check}: ${v.count} row(s)\n`);
          for (const s of v.sample) process.stdout.write(`  ${JSON.stringify(s)}\n`);
        }
        process.stdout.write(`verify: ${result.violations.length} of ${result.checks} invariants broken\n`);
      }
    }
    return result.violations.length === 0 ? 0 : 1;
  } finally {
    await pool.end();
  }
}
