import { useEffect, useState } from 'preact/hooks';
import type { paths } from '../../api/client/openapi';
import { api, failureOf } from './api';
import { Chart } from './chart';
import { DevelopmentChart, type CohortAssumption } from './report';
import { explainRefusal } from './explain';
import { TextField } from './field';
import { formatDate, formatMoney, formatMonth, formatPoints, formatRate, formatTime } from './format';
import { firstProgram, type Session } from './sign-in';

// The program at a glance for finance: the liability now and per day, points by month, burn rate,
// cost per redemption, breakage per cohort with its development curves (from the latest locked
// close), recent reconciliations, redemptions declined or in doubt. Every figure from the API
// (GET liability, trends, closes and their report, redemptions); nothing computed here but layout.

/** GET .../trends as the generated client types it: the spec's schema, so a drift breaks the build. */
type Trends = paths['/v1/programs/{programId}/trends']['get']['responses'][200]['content']['application/json'];
interface Liability {
  asOf: string;
  currency: string;
  outstandingPoints: number;
  expectedRedemptionPoints: number;
  deferredRevenueMinor: number;
  provisionMinor: number;
  cohorts: Array<{
    cohort: string;
    outstandingPoints: number;
    ultimateRedemptionRate: number;
    deferredRevenueMinor: number;
    provisionMinor: number;
  }>;
}
interface Redemption {
  invoiceId: string;
  memberId: string;
  status: string;
  reason: string | null;
  pointsRequested: number | null;
  occurredAt: string;
  createdAt: string;
}
interface Development {
  period: string;
  cohorts: CohortAssumption[];
}
interface Board {
  liability: Liability;
  trends: Trends;
  development: Development | null;
  declined: Redemption[];
  inDoubt: Redemption[];
}

/** A redemption still held this long after it was asked for has no answer from billing yet: in doubt. */
const IN_DOUBT_AFTER_MS = 15 * 60_000;
const RECENT_DAYS = 30;
const DECLINED_READ = 500;
const DECLINED_SHOWN = 50;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function load(programId: string, range: { from?: string; to?: string }): Promise<Board> {
  const path = { programId };
  const recent = { from: isoDay(Date.now() - RECENT_DAYS * 86_400_000), to: isoDay(Date.now()) };
  const [liability, trends, closes, declined, held] = await Promise.all([
    api.GET('/v1/programs/{programId}/liability', { params: { path } }),
    api.GET('/v1/programs/{programId}/trends', { params: { path, query: range } }),
    api.GET('/v1/programs/{programId}/closes', { params: { path, query: { status: 'locked', limit: 100 } } }),
    api.GET('/v1/programs/{programId}/redemptions', {
      params: { path, query: { status: 'declined', limit: DECLINED_READ, ...recent } },
    }),
    api.GET('/v1/programs/{programId}/redemptions', { params: { path, query: { status: 'held', limit: 100 } } }),
  ]);
  // every part answers or the board says why: a refused list must not read as "none declined"
  for (const r of [closes, declined, held]) if (!r.data) throw failureOf(r.error, r.response.status);
  if (!liability.data) throw failureOf(liability.error, liability.response.status);
  if (!trends.data) throw failureOf(trends.error, trends.response.status);
  // the breakage estimate's development curves: the latest locked close's report
  let development: Development | null = null;
  const lastLocked = (closes.data?.items ?? []).at(-1) as { period?: string } | undefined;
  if (lastLocked?.period) {
    const report = await api.GET('/v1/programs/{programId}/closes/{period}/report', {
      params: { path: { programId, period: lastLocked.period }, query: { format: 'json' } },
    });
    const cohorts = (report.data as { assumptions?: { cohorts?: Development['cohorts'] } } | undefined)?.assumptions
      ?.cohorts;
    if (cohorts) development = { period: lastLocked.period, cohorts };
  }
  const now = Date.now();
  return {
    liability: liability.data as unknown as Liability,
    trends: trends.data,
    development,
    // the list is oldest first: the newest DECLINED_SHOWN, newest first
    declined: ((declined.data?.items ?? []) as unknown as Redemption[]).slice(-DECLINED_SHOWN).reverse(),
    inDoubt: ((held.data?.items ?? []) as unknown as Redemption[]).filter(
      (r) => now - Date.parse(r.createdAt) >= IN_DOUBT_AFTER_MS,
    ),
  };
}

export function DashboardPage({ session }: { session: Session }) {
  const [programId, setProgramId] = useState(firstProgram(session));
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  // what is shown: a program and a range (empty: the API's default, the 90 days to today)
  const [shown, setShown] = useState({ programId, from: '', to: '' });
  const [board, setBoard] = useState<Board | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!shown.programId) return;
    setError(null);
    setBoard(null); // never the last program's figures under this one's name
    // an answer for what is no longer asked is dropped (a slow program asked before another)
    let current = true;
    const range = { ...(shown.from ? { from: shown.from } : {}), ...(shown.to ? { to: shown.to } : {}) };
    load(shown.programId, range)
      .then((b) => current && setBoard(b))
      .catch((f: unknown) => {
        if (!current) return;
        setError(explainRefusal(f as Parameters<typeof explainRefusal>[0], 'this program’s figures'));
      });
    return () => {
      current = false;
    };
  }, [shown]);
  return (
    <section aria-labelledby="dashboard-title">
      <h2 id="dashboard-title">Dashboard</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setShown({ programId: programId.trim(), from, to });
        }}
      >
        <TextField
          id="dashboard-program"
          label="Program"
          list="known-programs"
          required
          value={programId}
          onValue={setProgramId}
        />
        <TextField id="dashboard-from" label="From" type="date" value={from} onValue={setFrom} />
        <TextField id="dashboard-to" label="To" type="date" value={to} onValue={setTo} />
        <button type="submit">Show</button>
      </form>
      {session.known.length === 0 && (
        <p>
          Your key reaches no program yet. A program is created with <code>POST /v1/programs</code>; on a local stack,{' '}
          <code>npm run loyalty -- demo redemption</code> makes one with data.
        </p>
      )}
      {error && <p role="alert">{error}</p>}
      {!board && !error && shown.programId && <p role="status">Loading…</p>}
      {board && <Board programId={shown.programId} board={board} />}
    </section>
  );
}

function Board({ programId, board }: { programId: string; board: Board }) {
  const { liability, trends, development } = board;
  const money = (minor: number) => formatMoney(Math.round(minor), liability.currency);
  const points = (n: number) => formatPoints(Math.round(n));
  const months = trends.months;
  // the latest month that has the figure: a month without points issued has no burn rate
  const burnMonth = months.findLast((m) => m.burnRate !== null);
  const costMonth = months.findLast((m) => m.costPerRedemptionMinor !== null);
  return (
    <>
      <h3>Liability now: {programId}</h3>
      <dl class="figures" aria-label="Liability now">
        <dt>Contract liability (deferred revenue)</dt>
        <dd data-testid="deferred-now">{money(liability.deferredRevenueMinor)}</dd>
        <dt>Provision (incremental cost)</dt>
        <dd>{money(liability.provisionMinor)}</dd>
        <dt>Outstanding points</dt>
        <dd>{points(liability.outstandingPoints)}</dd>
        <dt>Expected to be redeemed</dt>
        <dd>{points(liability.expectedRedemptionPoints)} points</dd>
        <dt>Burn rate (redeemed ÷ issued)</dt>
        <dd data-testid="burn-rate">
          {burnMonth
            ? `${formatRate(burnMonth.burnRate)} in ${formatMonth(burnMonth.month)}`
            : 'no points issued in the range'}
        </dd>
        <dt>Cost per redemption</dt>
        <dd data-testid="cost-per-redemption">
          {costMonth?.costPerRedemptionMinor != null
            ? `${money(costMonth.costPerRedemptionMinor)} in ${formatMonth(costMonth.month)}`
            : 'no redemption in the range'}
        </dd>
        <dt>As of</dt>
        <dd>{formatTime(liability.asOf)}</dd>
      </dl>

      <Chart
        id="liability-by-day"
        caption={`Liability at each day’s close, ${formatDate(trends.from)} to ${formatDate(trends.to)}`}
        x={trends.days.map((d) => formatDate(d.date))}
        series={[
          { label: 'Contract liability', values: trends.days.map((d) => d.deferredRevenueMinor) },
          { label: 'Provision', values: trends.days.map((d) => d.provisionMinor) },
        ]}
        format={money}
      />

      <Chart
        id="points-by-month"
        caption="Points issued, redeemed, expired and adjusted, by month"
        x={months.map((m) => formatMonth(m.month))}
        series={[
          { label: 'Issued', values: months.map((m) => m.issuedPoints) },
          { label: 'Redeemed', values: months.map((m) => m.redeemedPoints) },
          { label: 'Expired', values: months.map((m) => m.expiredPoints) },
          { label: 'Adjusted', values: months.map((m) => m.adjustedPoints) },
        ]}
        format={points}
      />

      <table aria-label="Redemptions by month">
        <caption>Redemptions by month</caption>
        <thead>
          <tr>
            <th scope="col">Month</th>
            <th scope="col">Burn rate (redeemed ÷ issued)</th>
            <th scope="col">Redemptions</th>
            <th scope="col">Declined</th>
            <th scope="col">Credits granted</th>
            <th scope="col">Cost per redemption</th>
          </tr>
        </thead>
        <tbody>
          {months.map((m) => (
            <tr key={m.month}>
              <th scope="row">{formatMonth(m.month)}</th>
              <td>{formatRate(m.burnRate)}</td>
              <td>{formatPoints(m.redemptions)}</td>
              <td>{formatPoints(m.declinedRedemptions)}</td>
              <td>{money(m.creditMinor)}</td>
              <td>{m.costPerRedemptionMinor === null ? '—' : money(m.costPerRedemptionMinor)}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h3>Breakage estimate per cohort</h3>
      <table aria-label="Breakage estimate per cohort">
        <thead>
          <tr>
            <th scope="col">Cohort</th>
            <th scope="col">Outstanding points</th>
            <th scope="col">Ultimate redemption rate</th>
            <th scope="col">Breakage (1 − rate)</th>
            <th scope="col">Liability</th>
          </tr>
        </thead>
        <tbody>
          {liability.cohorts.map((c) => (
            <tr key={c.cohort}>
              <th scope="row">{c.cohort}</th>
              <td>{formatPoints(c.outstandingPoints)}</td>
              <td>{formatRate(c.ultimateRedemptionRate)}</td>
              <td>{formatRate((1_000_000 - Math.round(c.ultimateRedemptionRate * 1_000_000)) / 1_000_000)}</td>
              <td>{money(c.deferredRevenueMinor + c.provisionMinor)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {development ? (
        <DevelopmentChart period={development.period} cohorts={development.cohorts} />
      ) : (
        <p>No close is locked yet: the development curves come with the first close.</p>
      )}

      <h3>Reconciliation of recent days</h3>
      {trends.reconciliations.length === 0 ? (
        <p>No day in the range has been reconciled.</p>
      ) : (
        <ul class="reconciliations" aria-label="Reconciliation of recent days">
          {trends.reconciliations
            .slice(-14)
            .reverse()
            .map((r) => (
              <li key={r.date}>
                {formatDate(r.date)}:{' '}
                <strong>
                  {r.differenceCount === 0 && r.inProgressCount === 0
                    ? 'reconciled, no differences'
                    : `${formatPoints(r.differenceCount)} differences, ${formatPoints(r.inProgressCount)} in progress`}
                </strong>
              </li>
            ))}
        </ul>
      )}

      <h3>Redemptions declined or in doubt</h3>
      <RedemptionTable
        label={`Declined in the last ${RECENT_DAYS} days`}
        rows={board.declined}
        empty="None declined."
      />
      <RedemptionTable
        label="In doubt: held for more than 15 minutes without billing’s answer"
        rows={board.inDoubt}
        empty="None in doubt."
      />
    </>
  );
}

function RedemptionTable(props: { label: string; rows: Redemption[]; empty: string }) {
  return (
    <>
      <h4>{props.label}</h4>
      {props.rows.length === 0 ? (
        <p>{props.empty}</p>
      ) : (
        <table aria-label={props.label}>
          <thead>
            <tr>
              <th scope="col">Invoice</th>
              <th scope="col">Member</th>
              <th scope="col">Points asked</th>
              <th scope="col">Reason</th>
              <th scope="col">When</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={r.invoiceId}>
                <th scope="row">{r.invoiceId}</th>
                <td>{r.memberId}</td>
                <td>{r.pointsRequested === null ? 'as many as allowed' : formatPoints(r.pointsRequested)}</td>
                <td>{r.reason ?? '—'}</td>
                <td>{formatTime(r.occurredAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
