/**
 * `loyalty simulators`: the billing, GL and tax simulators as a process of their own, for a
 * deployment that has no real billing, GL or tax service to point the workers at (a demo, a staging
 * stack). Their state lives in memory: a restart forgets every credit line and GL entry.
 */
import pino from 'pino';
import { startSimulators } from '../simulators';
import type { StackConfig } from './config';

/** The settings `loyalty simulators` reads beyond stackConfig(), with their defaults written out. */
export function simulatorsEnv(env: NodeJS.ProcessEnv = process.env) {
  return {
    /** loopback by default, as npm start; a container sets 0.0.0.0 so that the workers can reach it */
    host: env.LOYALTY_SIMULATOR_HOST ?? '127.0.0.1',
  };
}

/** The fault-injection seed, as npm start's, so that a demo misbehaves the same way everywhere. */
const SEED = 1;

export async function runSimulatorsProcess(cfg: StackConfig, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = pino({ level: cfg.logLevel });
  const { host } = simulatorsEnv(env);
  const sims = await startSimulators(cfg.simulatorPorts, SEED, host);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log.info({ signal: sig }, 'stopping the simulators');
      void sims.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  log.info(
    { host, ports: cfg.simulatorPorts, billing: sims.billingUrl, gl: sims.glUrl, tax: sims.taxUrl },
    'simulators ready (faults: POST /admin/faults)',
  );
}
