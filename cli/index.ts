#!/usr/bin/env node
import { Command } from 'commander';
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
  .command('verify')
  .description("check the ledger's invariants over the whole database; exits 1 on any violation")
  .option('--database-url <url>', 'the ledger database (default: DATABASE_URL, else the embedded one of npm start)')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { databaseUrl?: string; json?: boolean }) => {
    process.exitCode = await runVerify(opts.databaseUrl ?? process.env.DATABASE_URL ?? stackConfig().embeddedDatabaseUrl, Boolean(opts.json));
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`loyalty: ${e.message}\n`);
  process.exit(2);
});
