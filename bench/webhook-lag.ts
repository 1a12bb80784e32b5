/**
 * Figures: accrual throughput through the HTTP API with the webhook outbox on (a webhook subscribed
 * to points.earned: an event row and a delivery row written in each accrual's transaction) against
 * off (no webhook: one index probe), and the delivery lag under that load (the event's recorded_at
 * to its arrival at a real receiver on loopback, delivered by the real relay). Rounds alternate off
 * and on, each on its own program, same member count and concurrency; the summary gives medians and
 * the ratio on/off (goal: >= 0.9). Two "on" phases: with the relay paused (what the outbox's writes
 * cost the accrual path alone) and with the relay delivering during the load (the lag; on a small
 * machine the relay's CPU is taken from the same cores). The API runs in a child process
 * (bench/api-server.ts); the relay and the receiver run in this process, beside the load generator.
 *
 *   npx tsx bench/webhook-lag.ts [--accruals 20000] [--members 5000] [--concurrency 64] [--rounds 3]
 *        [--warmup 2000] [--seed 1] [--work-dir /tmp]
 */
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { freePort } from '../cli/stack/process';
import { newSecret, putKey } from '../db/keys';
import { migrate } from '../db/migrate';
import { programBody as fixtureProgramBody } from '../test/helpers/fixtures';
import { createPool } from '../db/pool';
import { countPendingDeliveries } from '../db/webhooks';
import { WebhookReceiver } from '../simulators/webhook-receiver';
import { WebhookRelay } from '../workers/webhook-relay';
import {
  benchDatabase,
  intFlag,
  log,
  machineNote,
  markdownTable,
  median,
  prng,
  quantile,
  round,
  runMain,
  sleep,
  spawnTsChild,
  workDir,
  postJson as request,
} from './lib';

const GOAL_RATIO = 0.9;

const programBody = (programId: string) =>
  JSON.stringify(fixtureProgramBody(programId, { name: `Bench ${programId}` }));

/** n accruals to the program from `concurrency` loops; accruals per second (errors fail the run). */
async function drive(
  port: number,
  key: string,
  programId: string,
  n: number,
  members: number,
  concurrency: number,
  seed: number,
): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const rnd = prng(seed);
  const base = Date.now() - 24 * 3600_000;
  let next = 0;
  let errors = 0;
  let sample = '';
  const t0 = performance.now();
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const body = JSON.stringify({
        memberId: `m-${Math.floor(rnd() * members)}`,
        invoiceId: `${programId}-inv-${i}`,
        amountMinor: 100 + Math.floor(rnd() * 49_901),
        occurredAt: new Date(base + i).toISOString(),
      });
      const res = await request(agent, port, `/v1/programs/${programId}/accruals`, body, {
        authorization: `Bearer ${key}`,
        'idempotency-key': `${programId}-${i}`,
      });
      if (res.status !== 201) {
        errors++;
        sample ||= `${res.status} ${res.body.slice(0, 200)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  if (errors > 0) throw new Error(`${errors} accruals failed, e.g. ${sample}`);
  return n / seconds;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      accruals: { type: 'string', default: '20000' },
      members: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '64' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2000' },
      seed: { type: 'string', default: '1' },
      'work-dir': { type: 'string' },
    },
  });
  const n = intFlag('accruals', values.accruals);
  const members = intFlag('members', values.members);
  const concurrency = intFlag('concurrency', values.concurrency);
  const rounds = intFlag('rounds', values.rounds);
  const warmup = intFlag('warmup', values.warmup, 0);
  const seed = intFlag('seed', values.seed, 0);

  const work = workDir('loyalty-webhook-bench-', values['work-dir']);
  const db = await benchDatabase(work, 'loyalty_webhook_bench');
  const pool = createPool({ connectionString: db.url, maxConnections: 8, applicationName: 'bench-webhooks' });
  await migrate(pool);
  const billingKey = newSecret('bench-billing');
  const adminKey = newSecret('bench-admin');
  await putKey(pool, { keyId: 'bench-billing', secret: billingKey, principal: 'bench-billing', roles: ['billing'] });
  await putKey(pool, { keyId: 'bench-admin', secret: adminKey, principal: 'bench-admin', roles: ['admin'] });

  process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE = '1'; // the receiver is on loopback (the API child inherits it)
  const port = await freePort();
  await spawnTsChild(
    join(__dirname, 'api-server.ts'),
    ['--database-url', db.url, '--port', String(port)],
    'api server',
  );
  const receiver = new WebhookReceiver();
  await receiver.start();
  const firstArrival = new Map<string, number>();
  receiver.onRequest = (r) => {
    if (!firstArrival.has(r.eventId)) firstArrival.set(r.eventId, r.at);
  };
  const newRelay = () =>
    new WebhookRelay({
      pool,
      log: pino({ level: 'warn' }, pino.destination(2)),
      allowPrivate: true,
      batchSize: 200,
      concurrency: 32,
      idleMs: 50,
    });
  let relay = newRelay();
  relay.start();
  const admin = new http.Agent({ keepAlive: false });
  const makeProgram = async (programId: string, withWebhook: boolean) => {
    const p = await request(admin, port, '/v1/programs', programBody(programId), {
      authorization: `Bearer ${adminKey}`,
      'idempotency-key': `p-${programId}`,
    });
    if (p.status !== 201) throw new Error(`program ${programId}: ${p.status} ${p.body}`);
    if (!withWebhook) return;
    const w = await request(
      admin,
      port,
      `/v1/programs/${programId}/webhooks`,
      JSON.stringify({ url: receiver.url, events: ['points.earned'] }),
      { authorization: `Bearer ${adminKey}`, 'idempotency-key': `w-${programId}` },
    );
    if (w.status !== 201) throw new Error(`webhook ${programId}: ${w.status} ${w.body}`);
  };

  if (warmup > 0) {
    await makeProgram('warm-off', false);
    await makeProgram('warm-on', true);
    await drive(port, billingKey, 'warm-off', warmup, members, concurrency, seed);
    await drive(port, billingKey, 'warm-on', warmup, members, concurrency, seed);
    while ((await countPendingDeliveries(pool)) > 0) await sleep(100);
  }

  const drain = async () => {
    const t0 = Date.now();
    while ((await countPendingDeliveries(pool)) > 0) {
      if (Date.now() - t0 > 600_000) throw new Error('deliveries still pending after 10 minutes');
      await sleep(100);
    }
  };
  const rows: Array<Array<string | number>> = [];
  const off: number[] = [];
  const onPaused: number[] = [];
  const on: number[] = [];
  const lagP50: number[] = [];
  const lagP99: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const [pOff, pPaused, pOn] = [`off-${r}`, `paused-${r}`, `on-${r}`];
    await makeProgram(pOff, false);
    await makeProgram(pPaused, true);
    await makeProgram(pOn, true);
    // the outbox's writes alone: the relay paused, the deliveries wait in the table; off and paused
    // take turns going first (the database grows as the run goes)
    await relay.stop();
    let rateOff: number;
    let ratePaused: number;
    if (r % 2 === 1) {
      rateOff = await drive(port, billingKey, pOff, n, members, concurrency, seed + r);
      ratePaused = await drive(port, billingKey, pPaused, n, members, concurrency, seed + r);
    } else {
      ratePaused = await drive(port, billingKey, pPaused, n, members, concurrency, seed + r);
      rateOff = await drive(port, billingKey, pOff, n, members, concurrency, seed + r);
    }
    relay = newRelay();
    relay.start();
    await drain();
    // with the relay delivering during the load: the lag
    const rateOn = await drive(port, billingKey, pOn, n, members, concurrency, seed + r);
    await drain();
    const { rows: events } = await pool.query<{ event_id: string; recorded_at: Date }>(
      'select event_id, recorded_at from webhook_events where program_id = $1',
      [pOn],
    );
    if (events.length !== n) throw new Error(`${events.length} events for ${n} accruals`);
    const lags = events.map((e) => {
      const at = firstArrival.get(e.event_id);
      if (at === undefined) throw new Error(`event ${e.event_id} never arrived`);
      return at - e.recorded_at.getTime();
    });
    const p50 = quantile(lags, 0.5);
    const p99 = quantile(lags, 0.99);
    off.push(rateOff);
    onPaused.push(ratePaused);
    on.push(rateOn);
    lagP50.push(p50);
    lagP99.push(p99);
    rows.push([
      r,
      round(rateOff, 0),
      round(ratePaused, 0),
      round(ratePaused / rateOff, 3),
      round(rateOn, 0),
      round(rateOn / rateOff, 3),
      round(p50, 0),
      round(p99, 0),
    ]);
    log(
      `round ${r}: off ${round(rateOff, 0)}/s, on (relay paused) ${round(ratePaused, 0)}/s, on (relay delivering) ${round(rateOn, 0)}/s, lag p50 ${round(p50, 0)} ms, p99 ${round(p99, 0)} ms`,
    );
  }
  await relay.stop();
  await receiver.close();
  await pool.end();

  const summary = {
    accrualsPerRound: n,
    members,
    concurrency,
    rounds,
    offPerSecond: round(median(off), 0),
    onRelayPausedPerSecond: round(median(onPaused), 0),
    ratioRelayPaused: round(median(onPaused) / median(off), 3),
    // each round's ratio compares two phases a minute apart: less exposed to a neighbour's load
    medianRoundRatioRelayPaused: round(median(onPaused.map((x, i) => x / off[i]!)), 3),
    medianRoundRatioRelayDelivering: round(median(on.map((x, i) => x / off[i]!)), 3),
    onRelayDeliveringPerSecond: round(median(on), 0),
    ratioRelayDelivering: round(median(on) / median(off), 3),
    goalRatio: GOAL_RATIO,
    lagP50Ms: round(median(lagP50), 0),
    lagP99Ms: round(median(lagP99), 0),
    machine: machineNote(work),
  };
  process.stdout.write(
    markdownTable(
      [
        'round',
        'off (accruals/s)',
        'on, relay paused',
        'ratio',
        'on, relay delivering',
        'ratio',
        'lag p50 (ms)',
        'lag p99 (ms)',
      ],
      rows,
    ) +
      '\n' +
      JSON.stringify(summary, null, 2) +
      '\n',
  );
  return 0;
}

runMain(main);
