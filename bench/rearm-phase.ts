/**
 * The re-arm phase of bench/member-workflows.ts (`--rearm-window P180D`): with every member
 * workflow live and asleep, the program's expiry window changes and every member's deadline is
 * recomputed and its workflow woken (db/rearm.ts, the code the rule-change workflow's activity
 * runs; the relay delivers the wake-ups). Measured: the time until every workflow is armed on its
 * new deadline, the signal rate (per second, peak and mean), and the latency of an open-loop
 * accrual stream through the real API over HTTP, first alone and then during the re-arm.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import { newSecret, putKey } from '../db/keys';
import { rearmDeadlines } from '../db/rearm';
import type { WakeupRelay } from '../workers/wakeup-relay';
import { log, quantile, round, sleep, spawnTsChild } from './lib';

export interface RearmOptions {
  pool: Pool;
  databaseUrl: string;
  relay: WakeupRelay;
  programId: string;
  members: number;
  window: string;
  /** accruals per second, open loop */
  streamRate: number;
  streamAloneSeconds: number;
  timeoutMs: number;
  apiPort: number;
}

export interface StreamStats {
  sent: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface RearmResult {
  moved: number;
  recomputeSeconds: number;
  armedSeconds: number;
  signals: number;
  peakSignalsPerSecond: number;
  meanSignalsPerSecond: number;
  alone: StreamStats;
  during: StreamStats;
  /** the stream alone again once every workflow is re-armed: the machine is shared, so both ends */
  aloneAfter: StreamStats;
  /** p99 during / the lower of the two p99s alone (the conservative ratio) */
  ratioP99: number;
  ok: boolean;
}

/** Most accruals waiting for an answer at once: past it the stream counts an error instead of piling up. */
const MAX_IN_FLIGHT = 200;
const TICK_MS = 50;

/** An open-loop accrual stream: `rate` per second to random members, each answer's latency kept. */
class AccrualStream {
  private readonly latencies: number[] = [];
  private errors = 0;
  private inFlight = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(
    private readonly o: { port: number; key: string; programId: string; members: number; rate: number; tag: string },
  ) {}

  start(): void {
    let owed = 0;
    this.timer = setInterval(() => {
      owed += (this.o.rate * TICK_MS) / 1000;
      for (; owed >= 1; owed--) this.one();
    }, TICK_MS);
  }

  async stop(): Promise<StreamStats> {
    if (this.timer) clearInterval(this.timer);
    while (this.inFlight > 0) await sleep(20);
    this.agent.destroy();
    return {
      sent: this.seq,
      errors: this.errors,
      p50Ms: round(quantile(this.latencies, 0.5), 1),
      p99Ms: round(quantile(this.latencies, 0.99), 1),
      maxMs: round(quantile(this.latencies, 1), 1),
    };
  }

  private one(): void {
    const i = this.seq++;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.errors++;
      return;
    }
    this.inFlight++;
    const member = `m-${(i * 7919) % this.o.members}`;
    const body = JSON.stringify({
      memberId: member,
      invoiceId: `${this.o.tag}-${i}`,
      amountMinor: 1_000,
      occurredAt: new Date().toISOString(),
    });
    const t0 = performance.now();
    const req = http.request(
      {
        agent: this.agent,
        host: '127.0.0.1',
        port: this.o.port,
        method: 'POST',
        path: `/v1/programs/${this.o.programId}/accruals`,
        headers: {
          authorization: `Bearer ${this.o.key}`,
          'content-type': 'application/json',
          'idempotency-key': `${this.o.tag}-${i}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          this.inFlight--;
          if (res.statusCode === 201) this.latencies.push(performance.now() - t0);
          else this.errors++;
        });
      },
    );
    req.on('error', () => {
      this.inFlight--;
      this.errors++;
    });
    req.end(body);
  }
}

/** Members whose workflow is still armed on a deadline later than the one now due (not yet re-armed). */
async function notRearmed(pool: Pool, programId: string): Promise<number> {
  const { rows } = await pool.query(
    `select count(*)::int as n from members where program_id = $1 and status = 'active' and balance > 0
        and (armed_deadline is null or armed_deadline > expires_at)`,
    [programId],
  );
  return rows[0].n;
}

export async function measureRearm(o: RearmOptions): Promise<RearmResult> {
  const key = newSecret('bench-rearm');
  await putKey(o.pool, { keyId: 'bench-rearm', secret: key, principal: 'bench-rearm', roles: ['billing'] });
  await spawnTsChild(
    `${__dirname}/api-server.ts`,
    ['--database-url', o.databaseUrl, '--port', String(o.apiPort), '--pool-size', '8'],
    'api server',
  );
  const stream = (tag: string) =>
    new AccrualStream({ port: o.apiPort, key, programId: o.programId, members: o.members, rate: o.streamRate, tag });

  log(`re-arm: accrual stream alone, ${o.streamRate}/s for ${o.streamAloneSeconds} s`);
  const aloneStream = stream('alone');
  aloneStream.start();
  await sleep(o.streamAloneSeconds * 1000);
  const alone = await aloneStream.stop();
  log(`re-arm: stream alone p50 ${alone.p50Ms} ms, p99 ${alone.p99Ms} ms, ${alone.errors} errors`);

  // The new rule version, as activateRuleVersion writes it; then the activity's recompute.
  await o.pool.query(
    `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
     select program_id, version + 1, now(), jsonb_set(rules, '{expiry,window}', to_jsonb($2::text)), 'bench-rearm'
       from program_rule_versions where program_id = $1 order by version desc limit 1`,
    [o.programId, o.window],
  );
  const duringStream = stream('during');
  const signals0 = o.relay.signalled;
  const t0 = performance.now();
  duringStream.start();
  let lastLog = 0;
  const moved = await rearmDeadlines(o.pool, o.programId, (n) => {
    if (performance.now() - lastLog > 5_000) {
      log(`re-arm: ${n.toLocaleString('en-US')} deadlines recomputed`);
      lastLog = performance.now();
    }
  });
  const recomputeSeconds = (performance.now() - t0) / 1000;
  log(
    `re-arm: ${moved.toLocaleString('en-US')} deadlines recomputed in ${recomputeSeconds.toFixed(1)} s; waiting for the workflows`,
  );

  let peak = 0;
  let prev = o.relay.signalled;
  let prevAt = performance.now();
  let left = Infinity;
  let lastCheck = 0;
  while (performance.now() - t0 < o.timeoutMs) {
    await sleep(1000);
    const now = performance.now();
    peak = Math.max(peak, ((o.relay.signalled - prev) * 1000) / (now - prevAt));
    prev = o.relay.signalled;
    prevAt = now;
    if (now - lastCheck >= 5_000) {
      left = await notRearmed(o.pool, o.programId);
      log(
        `re-arm: ${((now - t0) / 1000).toFixed(0)} s, ${(o.relay.signalled - signals0).toLocaleString('en-US')} signals, ${left.toLocaleString('en-US')} workflows not yet re-armed`,
      );
      lastCheck = now;
      if (left === 0) break;
    }
  }
  const armedSeconds = (performance.now() - t0) / 1000;
  const during = await duringStream.stop();
  const signals = o.relay.signalled - signals0;
  log(`re-arm: stream during p50 ${during.p50Ms} ms, p99 ${during.p99Ms} ms, ${during.errors} errors`);
  const afterStream = stream('after');
  afterStream.start();
  await sleep(o.streamAloneSeconds * 1000);
  const aloneAfter = await afterStream.stop();
  log(`re-arm: stream alone again p50 ${aloneAfter.p50Ms} ms, p99 ${aloneAfter.p99Ms} ms, ${aloneAfter.errors} errors`);
  return {
    moved,
    recomputeSeconds: round(recomputeSeconds, 1),
    armedSeconds: round(armedSeconds, 1),
    signals,
    peakSignalsPerSecond: round(peak, 0),
    meanSignalsPerSecond: round(signals / armedSeconds, 0),
    alone,
    during,
    aloneAfter,
    ratioP99: round(during.p99Ms / Math.min(alone.p99Ms, aloneAfter.p99Ms), 2),
    ok: left === 0 && alone.errors === 0 && during.errors === 0 && aloneAfter.errors === 0,
  };
}
