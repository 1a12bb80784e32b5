import { join, resolve } from 'node:path';
import { ledgerRoles } from '../db/roles';
import { appPassword } from './stack/postgres-password';

/** Every setting of the local stack, from the environment, with the defaults written out here. */
export function stackConfig(env: NodeJS.ProcessEnv = process.env) {
  const dataDir = resolve(env.LOYALTY_DATA_DIR ?? '.data');
  const pgPort = Number(env.LOYALTY_PG_PORT ?? 5433);
  return {
    dataDir,
    apiPort: Number(env.PORT ?? 3000),
    apiHost: env.HOST ?? '127.0.0.1',
    databaseUrl: env.DATABASE_URL,
    databaseName: env.LOYALTY_DB_NAME ?? 'loyalty',
    pgPort,
    pgDataDir: join(dataDir, 'postgres'),
    /** the embedded server's ledger database as the app role (db/roles.ts), for commands run beside `npm start` */
    embeddedDatabaseUrl: `postgres://${ledgerRoles(env).app}:${appPassword(join(dataDir, 'postgres'), false) ?? 'not-started-yet'}@127.0.0.1:${pgPort}/${env.LOYALTY_DB_NAME ?? 'loyalty'}`,
    temporalAddress: env.TEMPORAL_ADDRESS, // set: use that server instead of starting the dev server
    temporalPort: Number(env.LOYALTY_TEMPORAL_PORT ?? 7233),
    temporalUiPort: Number(env.LOYALTY_TEMPORAL_UI_PORT ?? 8233),
    temporalDbFile: join(dataDir, 'temporal.sqlite'),
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    /** the Temporal UI the console links workflows to (`loyalty api`; npm start links its own dev server's UI) */
    temporalUiUrl: env.LOYALTY_TEMPORAL_UI_URL ?? null,
    taskQueue: env.LOYALTY_TASK_QUEUE ?? 'loyalty',
    devKeysFile: env.LOYALTY_DEV_KEYS_FILE,
    /** payload encryption: this key file, else (unless LOYALTY_CODEC=off) a local one made under the data dir */
    codecKeysFile: env.LOYALTY_CODEC_KEYS_FILE,
    codec: env.LOYALTY_CODEC !== 'off',
    /** browser origins allowed to call the codec routes: the Temporal UI's */
    codecCorsOrigins: (
      env.LOYALTY_CODEC_CORS_ORIGINS ??
      `http://localhost:${Number(env.LOYALTY_TEMPORAL_UI_PORT ?? 8233)},http://127.0.0.1:${Number(env.LOYALTY_TEMPORAL_UI_PORT ?? 8233)}`
    )
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    /** the billing, GL and tax simulators (the redemption saga's services) */
    simulatorPorts: {
      billing: Number(env.LOYALTY_BILLING_PORT ?? 4001),
      gl: Number(env.LOYALTY_GL_PORT ?? 4002),
      tax: Number(env.LOYALTY_TAX_PORT ?? 4003),
    },
    /** when the daily reconciliation runs, HH:MM UTC; `off` creates no schedule */
    reconciliationAt: parseTimeOfDay(env.LOYALTY_RECONCILIATION_AT ?? '00:30', 'LOYALTY_RECONCILIATION_AT'),
    /** when the daily GL posting runs, HH:MM UTC (before the reconciliation, which checks its balances); `off` creates no schedule */
    glDailyAt: parseTimeOfDay(env.LOYALTY_GL_DAILY_AT ?? '00:10', 'LOYALTY_GL_DAILY_AT'),
    /** days after quarter end when the schedule starts each program's close; `off` creates no schedule */
    closeDaysAfterQuarterEnd:
      env.LOYALTY_CLOSE_DAYS_AFTER_QUARTER === 'off' ? null : Number(env.LOYALTY_CLOSE_DAYS_AFTER_QUARTER ?? 5),
    /** minutes between the audit anchor's scheduled checkpoints (docs/audit.md); `off` creates no schedule */
    auditAnchorEveryMinutes:
      env.LOYALTY_AUDIT_ANCHOR_EVERY_MINUTES === 'off' ? null : Number(env.LOYALTY_AUDIT_ANCHOR_EVERY_MINUTES ?? 60),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
export type StackConfig = ReturnType<typeof stackConfig>;

function parseTimeOfDay(s: string, name: string): { hourUtc: number; minuteUtc: number } | null {
  if (s === 'off') return null;
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  if (!m) throw new Error(`${name} must be HH:MM (UTC) or off, not ${s}`);
  return { hourUtc: Number(m[1]), minuteUtc: Number(m[2]) };
}
