import { billingSimulator } from './billing';
import { glSimulator } from './gl';
import { taxSimulator } from './tax';

export interface RunningSimulators {
  billingUrl: string;
  glUrl: string;
  taxUrl: string;
  close: () => Promise<void>;
}

/**
 * Starts the three simulators, on loopback unless told another address (a container binds 0.0.0.0 so
 * that the workers can reach it); port 0 picks a free port.
 */
export async function startSimulators(
  ports: { billing: number; gl: number; tax: number },
  seed = 1,
  host = '127.0.0.1',
): Promise<RunningSimulators> {
  const sims = [billingSimulator(seed), glSimulator(seed + 1), taxSimulator(seed + 2)];
  const urls: string[] = [];
  for (const [i, port] of [ports.billing, ports.gl, ports.tax].entries()) {
    const address = await sims[i]!.app.listen({ port, host });
    urls.push(address);
  }
  return {
    billingUrl: urls[0]!,
    glUrl: urls[1]!,
    taxUrl: urls[2]!,
    close: async () => {
      await Promise.all(sims.map((s) => s.app.close()));
    },
  };
}
