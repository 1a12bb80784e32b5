/**
 * The tax simulator as a process of its own, so the fault suite can SIGKILL it and start it again on
 * the same port. Tax treatments are computed from the request alone, so a restart loses nothing the
 * ledger relies on (only the fault rules, which the suite sets again).
 */
import { taxSimulator } from '../../simulators/tax';

const port = Number(process.env.LOYALTY_FAULTS_TAX_PORT);
const seed = Number(process.env.LOYALTY_FAULTS_TAX_SEED ?? 3);
if (!Number.isInteger(port) || port <= 0) throw new Error('LOYALTY_FAULTS_TAX_PORT must be a port');

taxSimulator(seed)
  .app.listen({ port, host: '127.0.0.1' })
  .then(
    () => process.stdout.write('READY\n'),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
