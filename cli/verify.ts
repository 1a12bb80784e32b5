import { createPool } from '../db/pool';
import { verifyInvariants } from '../db/verify';

/** Prints every broken invariant with a few sample rows; returns the exit code (0 clean, 1 violations). */
export async function runVerify(databaseUrl: string, json: boolean): Promise<number> {
  const pool = createPool({ connectionString: databaseUrl, maxConnections: 2, applicationName: 'loyalty-verify' });
  try {
    const result = await verifyInvariants(pool);
    if (json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else if (result.violations.length === 0) {
      process.stdout.write(`verify: ${result.checks} invariants hold\n`);
    } else {
      for (const v of result.violations) {
        process.stdout.write(`VIOLATION ${v.check}: ${v.count} row(s)\n`);
        for (const s of v.sample) process.stdout.write(`  ${JSON.stringify(s)}\n`);
      }
      process.stdout.write(`verify: ${result.violations.length} of ${result.checks} invariants broken\n`);
    }
    return result.violations.length === 0 ? 0 : 1;
  } finally {
    await pool.end();
  }
}
