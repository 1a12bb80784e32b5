#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { runWorkerProcess } from '../workers/main';
import { runApiServer, runMigrate } from './api-server';
import { stackConfig } from './config';
import { demoDefaults, runRedemptionDemo } from './demo';
import { runClose, runReport } from './close';
import { runAudit, runAuditAnchor } from './audit';
import { rotateCodecKey } from './codec-keys';
import { runDevStack } from './dev-stack';
import { runAccessReview, runKeys, runPrincipals } from './keys';
import { runReconcile, runReconciliationReport } from './reconcile';
import { runSimulatorsProcess } from './simulators';
import { runVerify } from './verify';

const program = new Command()
  .name('loyalty')
  .description('Loyalty Ledger: the local stack and finance commands')
  .showHelpAfterError();

program
  .command('start')
  .description('run the whole local stack (PostgreSQL, Temporal dev server, worker, API)')
  // runDevStack prints its own failures, one line each (cli/dev-stack.ts), and exits 1
  .action(() => runDevStack(stackConfig()));

program
  .command('worker')
  .description('run a worker and the outbox relay against TEMPORAL_ADDRESS and DATABASE_URL (deployments run several)')
  .action(async () => {
    const cfg = stackConfig();
    await runWorkerProcess({
      temporalAddress: cfg.temporalAddress ?? `127.0.0.1:${cfg.temporalPort}`,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      databaseUrl: cfg.databaseUrl ?? cfg.embeddedDatabaseUrl,
      workflowBundlePath: process.env.LOYALTY_WORKFLOW_BUNDLE,
      searchAttributes: process.env.LOYALTY_SEARCH_ATTRIBUTES !== 'off',
      services: {
        billingUrl: process.env.LOYALTY_BILLING_URL ?? `http://127.0.0.1:${cfg.simulatorPorts.billing}`,
        glUrl: process.env.LOYALTY_GL_URL ?? `http://127.0.0.1:${cfg.simulatorPorts.gl}`,
        taxUrl: process.env.LOYALTY_TAX_URL ?? `http://127.0.0.1:${cfg.simulatorPorts.tax}`,
        timeoutMs: Number(process.env.LOYALTY_SERVICE_TIMEOUT_MS ?? 2000),
      },
    });
  });

program
  .command('api')
  .description(
    'run the HTTP API alone against DATABASE_URL and TEMPORAL_ADDRESS, on HOST:PORT (containers; deployments run several)',
  )
  .action(() => runApiServer(stackConfig()));

program
  .command('migrate')
  .description("apply the database migrations and exit (a deployment's one-shot job); exits 1 if one fails")
  .option(
    '--database-url <url>',
    'the ledger database as its owner (default: MIGRATION_DATABASE_URL, else DATABASE_URL)',
  )
  .action(async (opts: { databaseUrl?: string }) => {
    process.exit(
      await runMigrate(opts.databaseUrl ?? (process.env.MIGRATION_DATABASE_URL || process.env.DATABASE_URL)),
    );
  });

program
  .command('simulators')
  .description(
    'run the billing, GL and tax simulators alone on LOYALTY_BILLING_PORT / LOYALTY_GL_PORT / LOYALTY_TAX_PORT, bound to LOYALTY_SIMULATOR_HOST',
  )
  .action(() => runSimulatorsProcess(stackConfig()));

program
  .command('verify')
  .description("check the ledger's invariants over the whole database; exits 1 on any violation")
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { databaseUrl?: string; json?: boolean }) => {
    const code = await runVerify(
      opts.databaseUrl ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl,
      Boolean(opts.json),
    );
    process.exit(code); // explicit: the Temporal SDK's native runtime must not decide the exit code
  });

const yesterdayUtc = () => new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);

program
  .command('reconcile')
  .description(
    "run a day's reconciliation of a program now (redemptions against billing's credits, postings against the GL) and print the report; exits 0 with no differences, 1 with some",
  )
  .argument('<programId>')
  .option('--date <YYYY-MM-DD>', 'the day (UTC); default: yesterday', yesterdayUtc())
  .option('--json', 'print the report as JSON')
  .action(async (programId: string, opts: { date: string; json?: boolean }) => {
    const cfg = stackConfig();
    process.exit(
      await runReconcile({
        programId,
        date: opts.date,
        json: Boolean(opts.json),
        address: cfg.temporalAddress ?? `127.0.0.1:${cfg.temporalPort}`,
        namespace: cfg.namespace,
        taskQueue: cfg.taskQueue,
      }),
    );
  });

program
  .command('reconciliation')
  .description(
    "print a day's stored reconciliation report (its latest run); exits 0 with no differences, 1 with some, 3 when the day has no report",
  )
  .argument('<programId>')
  .argument('<date>', 'YYYY-MM-DD (UTC)')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print the report as JSON')
  .action(async (programId: string, date: string, opts: { databaseUrl?: string; json?: boolean }) => {
    process.exit(
      await runReconciliationReport({
        programId,
        date,
        json: Boolean(opts.json),
        databaseUrl: opts.databaseUrl ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl,
      }),
    );
  });

program
  .command('close')
  .description(
    "start (or find) the close of a quarter through the API and show its steps until it awaits a controller's approval or ends",
  )
  .argument('<programId>')
  .argument('<period>', 'a calendar quarter, e.g. 2026-Q3')
  .option(
    '--key-file <file>',
    "a file holding a finance principal's API key (default: LOYALTY_API_KEY); the close is started as that principal",
  )
  .option('--as <principal>', "refuse unless the key is this principal's (a check, not a way to act as someone)")
  .option('--api-url <url>', 'the API (default: LOYALTY_API_URL, else the one npm start runs)')
  .option(
    '--override-rate <rate>',
    "finance's ultimate redemption rate for every open cohort, instead of the triangle's (needs --justification)",
  )
  .option('--justification <text>', 'why the override')
  .option('--wait <seconds>', 'how long to show progress', '600')
  .action(
    async (
      programId: string,
      period: string,
      opts: {
        keyFile?: string;
        as?: string;
        apiUrl?: string;
        overrideRate?: string;
        justification?: string;
        wait: string;
      },
    ) => {
      const cfg = stackConfig();
      if ((opts.overrideRate === undefined) !== (opts.justification === undefined))
        throw new Error('--override-rate and --justification go together');
      const apiKey = opts.keyFile ? readFileSync(opts.keyFile, 'utf8').trim() : (process.env.LOYALTY_API_KEY ?? '');
      if (!apiKey)
        throw new Error("loyalty close needs a finance principal's API key: LOYALTY_API_KEY or --key-file <file>");
      process.exit(
        await runClose({
          programId,
          period,
          apiKey,
          as: opts.as,
          apiUrl: opts.apiUrl ?? process.env.LOYALTY_API_URL ?? `http://127.0.0.1:${cfg.apiPort}`,
          waitMs: Number(opts.wait) * 1000,
          override: opts.overrideRate ? { rate: Number(opts.overrideRate), justification: opts.justification! } : null,
        }),
      );
    },
  );

program
  .command('report')
  .description("print a quarter's disclosure report (the stored one once locked); exit 3 when the quarter has no close")
  .argument('<programId>')
  .argument('<period>')
  .option('--format <format>', 'json, csv or html', 'json')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .action(async (programId: string, period: string, opts: { format: string; databaseUrl?: string }) => {
    if (!['json', 'csv', 'html'].includes(opts.format)) throw new Error('--format is json, csv or html');
    process.exit(
      await runReport({
        programId,
        period,
        format: opts.format as 'json' | 'csv' | 'html',
        databaseUrl: opts.databaseUrl ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl,
      }),
    );
  });

const dbUrl = (opt?: string) => opt ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl;

program
  .command('keys')
  .description(
    'API keys: create (the secret is shown once), list (never the secret), rotate (new key, old revoked), revoke',
  )
  .argument('<action>', 'create, list, rotate or revoke')
  .argument('[keyId]', 'for rotate and revoke')
  .option('--principal <id>', 'create: the principal the key belongs to (loyalty principals add)')
  .option(
    '--roles <list>',
    "create: comma-separated roles, some of the principal's (billing, finance, controller, legal, program_owner, support, admin)",
  )
  .option('--programs <list>', 'create: the programs the key may touch, comma-separated (default: all)')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print JSON')
  .action(
    async (
      action: string,
      keyId: string | undefined,
      opts: { principal?: string; roles?: string; programs?: string; databaseUrl?: string; json?: boolean },
    ) => {
      process.exit(
        await runKeys(action, { ...opts, keyId, databaseUrl: dbUrl(opts.databaseUrl), json: Boolean(opts.json) }),
      );
    },
  );

program
  .command('principals')
  .description(
    'the people and services API keys belong to: add, list, roles (set what one may hold), disable, enable (never deleted)',
  )
  .argument('<action>', 'add, list, roles, disable or enable')
  .argument('[principalId]', 'for add, roles, disable and enable')
  .option('--kind <kind>', 'add: person or service (only a person can approve)')
  .option('--roles <list>', 'add, roles: comma-separated roles the principal may hold')
  .option('--name <displayName>', 'add: a display name')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print JSON')
  .action(
    async (
      action: string,
      principalId: string | undefined,
      opts: { kind?: string; roles?: string; name?: string; databaseUrl?: string; json?: boolean },
    ) => {
      process.exit(
        await runPrincipals(action, {
          principalId,
          kind: opts.kind,
          roles: opts.roles,
          displayName: opts.name,
          databaseUrl: dbUrl(opts.databaseUrl),
          json: Boolean(opts.json),
        }),
      );
    },
  );

program
  .command('access-review')
  .description('who holds which role through which active keys, and when each key was last used')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print JSON')
  .action(async (opts: { databaseUrl?: string; json?: boolean }) => {
    process.exit(await runAccessReview({ databaseUrl: dbUrl(opts.databaseUrl), json: Boolean(opts.json) }));
  });

program
  .command('codec-key')
  .description(
    'payload encryption keys: `rotate <keyId>` adds a new key and makes it the active one; the old ones stay so that existing histories still decrypt',
  )
  .argument('<action>', 'rotate')
  .argument('<keyId>', 'the new key id, e.g. 2027-01')
  .option('--file <path>', 'the key file (default: LOYALTY_CODEC_KEYS_FILE, else the local one of npm start)')
  .action((action: string, keyId: string, opts: { file?: string }) => {
    if (action !== 'rotate') throw new Error(`unknown action ${action}; use rotate`);
    const file = opts.file ?? process.env.LOYALTY_CODEC_KEYS_FILE ?? join(stackConfig().dataDir, 'codec-keys.json');
    rotateCodecKey(file, keyId);
    process.stdout.write(
      `${file}: ${keyId} is the active key; restart the workers, the API and the CLI users to use it\n`,
    );
  });

const audit = program
  .command('audit')
  .description(
    'the audit trail (changes to points, rules, keys and periods), oldest first; `loyalty verify` checks its hash chains',
  )
  .option('--program <programId>')
  .option('--member <memberId>')
  .option('--since <time>', 'ISO 8601, e.g. 2026-11-01T00:00:00Z')
  .option('--limit <n>', 'at most this many rows (up to 1000)', '100')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print JSON')
  .action(
    async (opts: {
      program?: string;
      member?: string;
      since?: string;
      limit: string;
      databaseUrl?: string;
      json?: boolean;
    }) => {
      process.exit(
        await runAudit({
          databaseUrl: dbUrl(opts.databaseUrl),
          programId: opts.program,
          memberId: opts.member,
          since: opts.since,
          limit: Number(opts.limit),
          json: Boolean(opts.json),
        }),
      );
    },
  );
audit
  .command('anchor')
  .description("signs a checkpoint of every audit chain's head and appends it to the anchor store (docs/audit.md)")
  .option('--label <label>', 'why it was taken (default cli:<user>)')
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print the signed checkpoint')
  .action(async (_o: unknown, cmd: Command) => {
    // the parent's options (--database-url, --json) may land on `audit`: read both
    const opts = cmd.optsWithGlobals<{ label?: string; databaseUrl?: string; json?: boolean }>();
    process.exit(
      await runAuditAnchor({ databaseUrl: dbUrl(opts.databaseUrl), label: opts.label, json: Boolean(opts.json) }),
    );
  });

const demo = program.command('demo').description('walk-throughs against the stack that npm start runs');

/** The settings, or (a bad variable) one line saying which and exit 2, before any command runs. */
function configOrExit(): ReturnType<typeof stackConfig> {
  try {
    return stackConfig();
  } catch (e) {
    process.stderr.write(`loyalty: ${(e as Error).message}\n`);
    process.exit(2);
  }
}

const demoDefault = demoDefaults(configOrExit());
demo
  .command('redemption')
  .description(
    'the redemption saga: applied, declined with compensations (the GL refuses), reversed by a lost chargeback; exits 0 when all behaved as expected, 1 when not, 2 when the stack is not reachable',
  )
  .option('--api-url <url>', 'the loyalty API', demoDefault.apiUrl)
  .option(
    '--key <key>',
    `an API key for every call, with the admin role (default: dev-admin and dev-billing from ${demoDefault.keysFile})`,
  )
  .option('--billing-url <url>', 'the billing simulator', demoDefault.billingUrl)
  .option('--gl-url <url>', 'the GL simulator', demoDefault.glUrl)
  .option('--ui-url <url>', 'the Temporal UI, for the links to the workflows', demoDefault.uiUrl)
  .action(async (opts: { apiUrl: string; key?: string; billingUrl: string; glUrl: string; uiUrl: string }) => {
    process.exit(await runRedemptionDemo({ ...demoDefault, ...opts }));
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`loyalty: ${e.message}\n`);
  process.exit(2);
});
