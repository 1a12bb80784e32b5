import { formatMoney, formatRate, formatTime } from './format';

// A close's proposal as its approver reads it: each cohort's new breakage estimate against the
// prior one, where it came from, the catch-up it books, and the close's steps so far.

export interface CloseView {
  period: string;
  status: string;
  step?: string;
  startedBy?: string;
  startedAt?: string;
  proposal?: {
    cohorts: Array<{
      cohort: string;
      rate: string;
      priorRate: string;
      method: string;
      reason: string | null;
      catchUpMinor: number;
    }>;
    totalCatchUpMinor: number;
    override: { rate: number; justification: string } | null;
  } | null;
  approvedBy?: string | null;
  approvedAt?: string | null;
  bookedAt?: string | null;
  glEntryId?: string | null;
}

const METHODS: Record<string, string> = {
  chain_ladder: 'chain ladder from the redemption history',
  prior: 'prior estimate kept',
  override: 'finance’s override',
};

export function Proposal({ close, currency }: { close: CloseView; currency: string }) {
  const p = close.proposal;
  const money = (minor: number) => formatMoney(minor, currency);
  return (
    <>
      <ol class="steps" aria-label={`Steps of close ${close.period}`}>
        <li>
          Started by {close.startedBy ?? '—'} on {formatTime(close.startedAt)}; the period frozen
        </li>
        {p && <li>Breakage re-estimated and proposed: a catch-up of {money(p.totalCatchUpMinor)}</li>}
        {close.approvedBy && (
          <li>
            Approved by {close.approvedBy} on {formatTime(close.approvedAt)}
          </li>
        )}
        {close.glEntryId && (
          <li>
            Posted to the GL ({close.glEntryId}) on {formatTime(close.bookedAt)}, locked
          </li>
        )}
        <li>
          Now: <strong>{close.status}</strong>
          {close.step && close.step !== close.status ? ` (step ${close.step})` : ''}
        </li>
      </ol>
      {p && (
        <table aria-label={`Proposal of close ${close.period}`}>
          <caption>Proposed breakage estimates</caption>
          <thead>
            <tr>
              <th scope="col">Cohort</th>
              <th scope="col">Ultimate redemption rate</th>
              <th scope="col">Prior</th>
              <th scope="col">Source</th>
              <th scope="col">Catch-up</th>
            </tr>
          </thead>
          <tbody>
            {p.cohorts.map((c) => (
              <tr key={c.cohort}>
                <th scope="row">{c.cohort}</th>
                <td>{formatRate(c.rate)}</td>
                <td>{formatRate(c.priorRate)}</td>
                <td>
                  {METHODS[c.method] ?? c.method}
                  {c.reason ? ` (${c.reason})` : ''}
                </td>
                <td>{money(c.catchUpMinor)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {p?.override && (
        <p>
          Override: {formatRate(p.override.rate)}, because {p.override.justification}
        </p>
      )}
    </>
  );
}
