#!/usr/bin/env node
import { Command } from 'commander';
import { runWorkerProcess } from '../workers/main';
import { stackConfig } from './config';
import { runDevStack } from './dev-stack';
import { runVerify } from './verify';

const program = new Command()
  .name('loyalty')
  .description('Loyalty Ledger: the local stack and finance commands')
  .showHelpAfterError();

program
  .command('start')
  .description('run the whole local stack (PostgreSQL, Temporal dev server, worker, API)')
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
  .command('verify')
  .description("check the ledger's invariants over the whole database; exits 1 on any violation")
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { databaseUrl?: string; json?: boolean }) => {
    const code = await runVerify(opts.databaseUrl ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl, Boolean(opts.json));
    process.exit(code); // explicit: the Temporal SDK's native runtime must not decide the exit code
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`loyalty: ${e.message}\n`);
  process.exit(2);
});
