import { useEffect, useState } from 'preact/hooks';
import { api, failureOf } from './api';
import { Chart } from './chart';
import { explainRefusal } from './explain';
import { formatMoney, formatPoints, formatRate } from './format';

// A close's disclosure report (GET .../closes/{period}/report): the figures of the HTML report with
// its two charts (the roll-forward and the cohorts' development curves), and the files to download.
// A draft until the close is locked: the same figures the approver decides on.

interface RollForward {
  openingMinor: number;
  issuedMinor: number;
  recognizedMinor: number;
  recognized: { redemptionsMinor: number; breakageMinor: number; estimateChangeMinor: number };
  adjustedMinor: number;
  closingMinor: number;
}
export interface CohortAssumption {
  cohort: string;
  rate: number;
  priorRate: number;
  method: string;
  catchUpMinor: number;
  development: number[];
}
interface Report {
  period: string;
  currency: string;
  status: string;
  liability: RollForward;
  provision?: RollForward;
  points: { opening: number; issued: number; redeemed: number; expired: number; adjusted: number; closing: number };
  revenueFromOpeningBalanceMinor: number;
  cohorts: Array<{
    cohort: string;
    pointsIssued: number;
    pointsRedeemed: number;
    pointsExpired: number;
    ultimateRedemptionRate: number;
    recognizedMinor: number;
    deferredMinor: number;
  }>;
  taxEffect?: Array<{ jurisdiction: string; treatment: string; redemptions: number; outputTaxMinor: number }>;
  assumptions: { cohorts: CohortAssumption[]; startedBy: string; approvedBy: string | null };
}

const FORMATS = [
  ['csv', 'CSV', 'text/csv'],
  ['json', 'JSON', 'application/json'],
  ['html', 'HTML', 'text/html'],
] as const;

/** Each cohort's cumulative share redeemed by quarters since issue: the breakage estimate's evidence. */
export function DevelopmentChart({ period, cohorts }: { period: string; cohorts: CohortAssumption[] }) {
  const ages = Math.max(0, ...cohorts.map((c) => c.development.length));
  return (
    <Chart
      id={`development-${period}`}
      caption={`Cumulative share of each cohort’s points redeemed, by quarters since issue (close ${period})`}
      x={Array.from({ length: ages }, (_, i) => `Q+${i}`)}
      series={cohorts.map((c) => ({
        label: `${c.cohort} (ultimate ${formatRate(c.rate)}, ${c.method.replace('_', ' ')})`,
        values: Array.from({ length: ages }, (_, i) => c.development[i] ?? null),
      }))}
      format={(v) => formatRate(v)}
    />
  );
}

export function CloseReport({ programId, period }: { programId: string; period: string }) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<string | null>(null);
  const path = { programId, period };
  useEffect(() => {
    void api
      .GET('/v1/programs/{programId}/closes/{period}/report', { params: { path, query: { format: 'json' } } })
      .then((res) =>
        res.data
          ? setReport(res.data as unknown as Report)
          : setError(explainRefusal(failureOf(res.error, res.response.status), 'this report')),
      );
  }, [programId, period]);
  // The key is sent in a header, never a URL: the file is fetched, then handed to the browser as a Blob.
  const download = async (format: (typeof FORMATS)[number]) => {
    const res = await api.GET('/v1/programs/{programId}/closes/{period}/report', {
      params: { path, query: { format: format[0] } },
      parseAs: 'blob',
    });
    if (!res.data) return setError(explainRefusal(failureOf(res.error, res.response.status), 'this report'));
    const url = URL.createObjectURL(new Blob([res.data], { type: format[2] }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `loyalty-liability-${programId}-${period}.${format[0]}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  if (error) return <p role="alert">{error}</p>;
  if (!report) return <p role="status">Loading the report…</p>;
  const money = (minor: number) => formatMoney(Math.round(minor), report.currency);
  const l = report.liability;
  const steps: Array<[string, number]> = [
    ['Opening', l.openingMinor],
    ['Issued', l.issuedMinor],
    ['Redemptions', 0 - l.recognized.redemptionsMinor],
    ['Breakage', 0 - l.recognized.breakageMinor],
    ['Estimate change', 0 - l.recognized.estimateChangeMinor],
    ['Adjusted', l.adjustedMinor],
    ['Closing', l.closingMinor],
  ];
  const p = report.points;
  return (
    <section aria-labelledby={`report-${period}`}>
      <h3 id={`report-${period}`}>
        Report {report.period} ({report.status === 'locked' ? 'final' : `draft, ${report.status}`})
      </h3>
      <p class="row">
        Download:
        {FORMATS.map((f) => (
          <button type="button" key={f[0]} onClick={() => void download(f)}>
            {f[1]}
          </button>
        ))}
      </p>
      <Chart
        id={`rollforward-${period}`}
        caption="Contract liability roll-forward: opening, issued, recognised (redemptions, breakage, estimate change), adjusted, closing"
        x={steps.map((s) => s[0])}
        series={[{ label: 'Amount', values: steps.map((s) => s[1]) }]}
        bars
        format={money}
      />
      <p>
        Revenue recognised in the period from the opening contract liability:{' '}
        <strong data-testid="from-opening">{money(report.revenueFromOpeningBalanceMinor)}</strong>
      </p>
      <table aria-label="Points roll-forward">
        <caption>Points</caption>
        <tbody>
          {(
            [
              ['Opening', p.opening],
              ['Issued', p.issued],
              ['Redeemed', 0 - p.redeemed],
              ['Expired', 0 - p.expired],
              ['Adjusted', p.adjusted],
              ['Closing', p.closing],
            ] as const
          ).map(([label, v]) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              <td>{formatPoints(v)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table aria-label="Cohorts">
        <caption>Cohorts</caption>
        <thead>
          <tr>
            <th scope="col">Cohort</th>
            <th scope="col">Issued</th>
            <th scope="col">Redeemed</th>
            <th scope="col">Expired</th>
            <th scope="col">Ultimate redemption</th>
            <th scope="col">Recognised</th>
            <th scope="col">Deferred</th>
          </tr>
        </thead>
        <tbody>
          {report.cohorts.map((c) => (
            <tr key={c.cohort}>
              <th scope="row">{c.cohort}</th>
              <td>{formatPoints(c.pointsIssued)}</td>
              <td>{formatPoints(c.pointsRedeemed)}</td>
              <td>{formatPoints(c.pointsExpired)}</td>
              <td>{formatRate(c.ultimateRedemptionRate)}</td>
              <td>{money(c.recognizedMinor)}</td>
              <td>{money(c.deferredMinor)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <DevelopmentChart period={report.period} cohorts={report.assumptions.cohorts} />
      <p>
        Started by {report.assumptions.startedBy}; approved by {report.assumptions.approvedBy ?? '(not yet)'}.
      </p>
    </section>
  );
}
