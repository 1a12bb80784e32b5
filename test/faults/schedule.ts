/**
 * The seeded fault schedule, drawn before the run starts, and its executor. Two lanes: the
 * infrastructure (one at a time: SIGKILL the worker, restart Temporal, crash PostgreSQL, restart a
 * simulator) and the simulators' own fault rules (5xx, latency, held-until-timeout), which overlap
 * with the first lane but never with another rule on the same operation.
 */
import type { FaultStack, SimName } from './stack';
import { sleep, type Rng } from './rng';

export type InfraKind =
  'worker_kill' | 'temporal_restart' | 'postgres_restart' | 'tax_restart' | 'billing_outage' | 'gl_outage';
export type SimKind = 'sim_fail' | 'sim_slow' | 'sim_timeout';

export interface InfraFault {
  lane: 'infra';
  atMs: number;
  kind: InfraKind;
  downMs: number;
}
export interface SimFault {
  lane: 'sim';
  atMs: number;
  kind: SimKind;
  sim: SimName;
  operation: string;
  rule: Record<string, number>;
  durationMs: number;
}
export type Fault = InfraFault | SimFault;

const INFRA_KINDS: InfraKind[] = [
  'worker_kill',
  'temporal_restart',
  'postgres_restart',
  'tax_restart',
  'billing_outage',
  'gl_outage',
];
/** The operations the saga calls (the reconciliation's reads run after the faults). */
const SIM_OPERATIONS: Array<[SimName, string]> = [
  ['billing', 'get_invoice'],
  ['billing', 'apply_credit'],
  ['billing', 'reverse_credit'],
  ['gl', 'post_entry'],
  ['tax', 'get_treatment'],
];
const RESET = { failNext: 0, failRate: 0, latencyMs: 0, timeoutNext: 0 };

/**
 * The saga gives a service about 13 s (5 attempts of at most 2 s, 0.2 to 1.6 s apart) before it
 * compensates. Rules on one operation are spaced by more than that, so that most sagas' budgets
 * span at most one of them. The long slowdowns (on unless LOYALTY_FAULTS_LONG_SLOWDOWNS=0) outlast
 * the budget on purpose: billing and the GL do every call the saga gave up on, after it gave up,
 * and the saga's compensation must find and undo them (docs/faults.md).
 */
const OPERATION_COOLDOWN_MS = 15_000;

export function buildSchedule(
  rng: Rng,
  workloadMs: number,
  o: { longSlowdowns: boolean } = { longSlowdowns: false },
): Fault[] {
  const faults: Fault[] = [];
  // Infrastructure: every kind once first (in a seeded order) so that even a short run sees each,
  // then more drawn by weight; the last one starts early enough to be undone before the end.
  const infra = rng.fork('infra');
  const firstRound = infra.shuffle([...INFRA_KINDS]);
  for (let at = 6_000, i = 0; at < workloadMs - 15_000; at += infra.int(7_000, 15_000), i++) {
    const kind =
      firstRound[i] ??
      infra.weighted<InfraKind>({
        worker_kill: 35,
        temporal_restart: 20,
        postgres_restart: 20,
        tax_restart: 9,
        billing_outage: 8,
        gl_outage: 8,
      });
    const downMs =
      kind === 'worker_kill'
        ? infra.int(200, 3_000)
        : kind === 'temporal_restart'
          ? infra.int(500, 4_000)
          : infra.int(300, 3_000);
    faults.push({ lane: 'infra', atMs: at, kind, downMs });
  }
  const sim = rng.fork('sim');
  const busyUntil = new Map<string, number>();
  if (o.longSlowdowns) {
    for (const [share, service, operation] of [
      [0.25, 'billing', 'apply_credit'],
      [0.6, 'gl', 'post_entry'],
    ] as const) {
      const at = Math.round(workloadMs * share);
      faults.push({
        lane: 'sim',
        atMs: at,
        kind: 'sim_slow',
        sim: service,
        operation,
        rule: { latencyMs: 2_600 },
        durationMs: 20_000,
      });
      busyUntil.set(`${service}.${operation}`, at + 20_000 + OPERATION_COOLDOWN_MS);
    }
  }
  for (let at = 3_000; at < workloadMs - 10_000; at += sim.int(2_000, 7_000)) {
    const [service, operation] = sim.pick(SIM_OPERATIONS);
    if ((busyUntil.get(`${service}.${operation}`) ?? 0) > at) continue;
    const kind = sim.weighted<SimKind>({ sim_fail: 45, sim_slow: 35, sim_timeout: 20 });
    const failStatus = sim.pick([500, 502, 503, 503, 429]);
    let rule: Record<string, number>;
    if (kind === 'sim_fail')
      rule = sim.chance(0.5) ? { failNext: sim.int(1, 6), failStatus } : { failRate: sim.int(2, 7) / 10, failStatus };
    // above the adapters' 2 s timeout the call is answered after the saga gave up on it
    else if (kind === 'sim_slow') rule = { latencyMs: sim.chance(0.4) ? sim.int(2_100, 3_500) : sim.int(100, 1_500) };
    else rule = { timeoutNext: sim.int(1, 3) };
    const durationMs = sim.int(2_000, 8_000);
    busyUntil.set(`${service}.${operation}`, at + durationMs + OPERATION_COOLDOWN_MS);
    faults.push({ lane: 'sim', atMs: at, kind, sim: service, operation, rule, durationMs });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

export function describe(f: Fault): string {
  if (f.lane === 'infra') return `${f.kind} (down ${(f.downMs / 1000).toFixed(1)} s)`;
  return `${f.kind} ${f.sim}.${f.operation} ${JSON.stringify(f.rule)} for ${(f.durationMs / 1000).toFixed(1)} s`;
}

export interface FaultCounts {
  injected: Record<string, number>;
  skipped: Record<string, number>;
  /** faults the simulators report having injected (5xx, timeouts) */
  simInjected: number;
  errors: string[];
}

/** Runs the schedule against the stack from t0 until stopped; resolves when every fault begun is undone. */
export class FaultRunner {
  readonly counts: FaultCounts = { injected: {}, skipped: {}, simInjected: 0, errors: [] };
  private stopped = false;
  private readonly activeSimRules = new Map<string, SimFault>();
  private taxInjectedBeforeRestarts = 0;
  private lanes: Promise<void>[] = [];

  constructor(
    private readonly stack: FaultStack,
    private readonly schedule: Fault[],
    private readonly note: (s: string) => void,
  ) {}

  start(t0: number): void {
    const infra = this.schedule.filter((f): f is InfraFault => f.lane === 'infra');
    const sim = this.schedule.filter((f): f is SimFault => f.lane === 'sim');
    this.lanes = [this.runInfra(t0, infra), this.runSim(t0, sim)];
  }

  /** No new faults; waits for those under way to be undone. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.lanes);
  }

  private count(kind: string, bucket: 'injected' | 'skipped' = 'injected'): void {
    this.counts[bucket][kind] = (this.counts[bucket][kind] ?? 0) + 1;
  }

  private async waitUntil(t0: number, atMs: number): Promise<boolean> {
    while (!this.stopped && Date.now() < t0 + atMs) await sleep(Math.min(200, t0 + atMs - Date.now()));
    return !this.stopped;
  }

  private async runInfra(t0: number, faults: InfraFault[]): Promise<void> {
    for (const f of faults) {
      if (!(await this.waitUntil(t0, f.atMs))) return;
      if (f.kind === 'postgres_restart' && !this.stack.pgRestartable) {
        this.count(f.kind, 'skipped');
        this.note(`skipped ${f.kind}: PostgreSQL is DATABASE_URL's server, which the suite cannot restart`);
        continue;
      }
      const began = Date.now();
      this.note(`fault ${describe(f)}`);
      try {
        switch (f.kind) {
          case 'worker_kill':
            await this.stack.killWorker(f.downMs);
            break;
          case 'temporal_restart':
            await this.stack.restartTemporal(f.downMs);
            break;
          case 'postgres_restart':
            await this.stack.crashPostgres(f.downMs);
            break;
          case 'tax_restart':
            this.taxInjectedBeforeRestarts += await this.stack.simFaultsInjected('tax').catch(() => 0);
            await this.stack.restartTax(f.downMs);
            // the new process knows none of the rules in force
            for (const r of this.activeSimRules.values())
              if (r.sim === 'tax') await this.stack.setSimFault('tax', { operation: r.operation, ...r.rule });
            break;
          case 'billing_outage':
            await this.stack.outage('billing', f.downMs);
            break;
          case 'gl_outage':
            await this.stack.outage('gl', f.downMs);
            break;
        }
        this.count(f.kind);
        this.note(`  ${f.kind} undone after ${((Date.now() - began) / 1000).toFixed(1)} s`);
      } catch (e) {
        this.counts.errors.push(`${f.kind}: ${(e as Error).message}`);
        this.note(`  ${f.kind} FAILED: ${(e as Error).message}`);
      }
    }
  }

  private async runSim(t0: number, faults: SimFault[]): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const f of faults) {
      if (!(await this.waitUntil(t0, f.atMs))) break;
      const key = `${f.sim}.${f.operation}`;
      if (this.activeSimRules.has(key)) {
        this.count(f.kind, 'skipped');
        continue;
      }
      this.activeSimRules.set(key, f);
      pending.push(
        (async () => {
          try {
            await this.stack.setSimFault(f.sim, { operation: f.operation, ...RESET, ...f.rule, seed: f.atMs });
            this.count(f.kind);
            this.note(`fault ${describe(f)}`);
            const end = Date.now() + f.durationMs;
            while (!this.stopped && Date.now() < end) await sleep(Math.min(200, end - Date.now()));
          } catch (e) {
            this.counts.errors.push(`${f.kind} ${key}: ${(e as Error).message}`);
          } finally {
            this.activeSimRules.delete(key);
            await this.stack.setSimFault(f.sim, { operation: f.operation, ...RESET }).catch(() => undefined);
          }
        })(),
      );
    }
    await Promise.all(pending);
  }

  /** What the simulators say they injected (5xx answers and held calls), read after the run. */
  async readSimInjected(): Promise<void> {
    let total = this.taxInjectedBeforeRestarts;
    for (const sim of ['billing', 'gl', 'tax'] as const)
      total += await this.stack.simFaultsInjected(sim).catch(() => 0);
    this.counts.simInjected = total;
  }
}
