import { useRef, useState } from 'preact/hooks';
import { AdjustmentForm } from './adjust';
import { TextField } from './field';
import { api, failureOf } from './api';
import { useCurrency } from './currency';
import { explainRefusal } from './explain';
import { formatMoney, formatPoints, formatTime } from './format';
import { WorkflowLink } from './links';
import { firstProgram, type Session } from './sign-in';

interface Member {
  memberId: string;
  balance: number;
  held: number;
  available: number;
  expiresAt: string | null;
  status: string;
  mergedInto: string | null;
  workflowId: string;
}
interface Entry {
  entryId: string;
  type: string;
  points: number;
  occurredAt: string;
  reference: string | null;
  actor: string;
}

interface Redemption {
  invoiceId: string;
  /** the invoice's saga (GET .../redemptions/{invoiceId} names it) */
  workflowId: string;
  status: string;
  reason: string | null;
  pointsApplied: number;
  creditMinor: number;
  pointsReversed: number;
}

/** The redemptions the ledger names (entries `invoice:<id>`), newest first, at most this many. */
const REDEMPTIONS_SHOWN = 20;
/** The timeline shows the newest entries, at most this many; the ledger is read oldest first, a page at a time. */
const TIMELINE_SHOWN = 200;
const LEDGER_PAGE = 1000;
/** a limit on the reading: a member with more entries shows the newest of the first this many pages */
const LEDGER_PAGES_MAX = 20;

async function newestEntries(path: { programId: string; memberId: string }): Promise<Entry[]> {
  let kept: Entry[] = [];
  let after: string | undefined;
  for (let page = 0; page < LEDGER_PAGES_MAX; page++) {
    const res = await api.GET('/v1/programs/{programId}/members/{memberId}/ledger', {
      params: { path, query: { limit: LEDGER_PAGE, ...(after ? { after } : {}) } },
    });
    kept = [...kept, ...((res.data?.entries ?? []) as unknown as Entry[])].slice(-TIMELINE_SHOWN);
    if (!res.data?.nextAfter) break;
    after = res.data.nextAfter;
  }
  return kept;
}

const invoiceOf = (reference: string | null) => (reference?.startsWith('invoice:') ? reference.slice(8) : null);

/** A member by id: balance, held, available, deadline, status, and the ledger as a timeline. */
export function MemberPage({ session }: { session: Session }) {
  const [programId, setProgramId] = useState(firstProgram(session));
  const [memberId, setMemberId] = useState('');
  const [member, setMember] = useState<Member | null>(null);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [redemptions, setRedemptions] = useState<Redemption[]>([]);
  const [error, setError] = useState<string | null>(null);
  /** what is shown, as it was looked up: the page's actions go to it, not to what the fields say now */
  const [shown, setShown] = useState<{ programId: string; memberId: string } | null>(null);
  const currency = useCurrency(shown?.programId ?? '');
  // the latest look-up wins: an earlier one answering late must not replace the member asked for
  const asked = useRef(0);
  const search = async (e?: Event) => {
    e?.preventDefault();
    const mine = ++asked.current;
    setError(null);
    // a new search reads the fields; a refresh after an adjustment reads the member shown
    const path = e || !shown ? { programId: programId.trim(), memberId: memberId.trim() } : shown;
    if (e) setMember(null);
    const found = await api.GET('/v1/programs/{programId}/members/{memberId}', { params: { path } });
    if (mine !== asked.current) return;
    if (!found.data) return setError(explainRefusal(failureOf(found.error, found.response.status), 'this member'));
    const timeline = (await newestEntries(path)).reverse();
    const invoices = [
      ...new Set(
        timeline.filter((e) => e.type === 'redeem' || e.type === 'redeem_reversal').map((e) => invoiceOf(e.reference)),
      ),
    ]
      .filter((i): i is string => i !== null)
      .slice(0, REDEMPTIONS_SHOWN);
    const answers = await Promise.all(
      invoices.map((invoiceId) =>
        api.GET('/v1/programs/{programId}/redemptions/{invoiceId}', {
          params: { path: { programId: path.programId, invoiceId } },
        }),
      ),
    );
    if (mine !== asked.current) return;
    setShown(path);
    setMember(found.data as Member);
    setEntries(timeline);
    setRedemptions(answers.flatMap((r) => (r.data ? [r.data as unknown as Redemption] : [])));
  };
  return (
    <section aria-labelledby="member-title">
      <h2 id="member-title">Members</h2>
      <form onSubmit={search} class="row">
        <TextField
          id="member-program"
          label="Program"
          list="known-programs"
          required
          value={programId}
          onValue={setProgramId}
        />
        <TextField id="member-id" label="Member id" required value={memberId} onValue={setMemberId} />
        <button type="submit">Look up</button>
      </form>
      {error && <p role="alert">{error}</p>}
      {member && (
        <article aria-label={`Member ${member.memberId}`}>
          <dl class="figures">
            <dt>Balance</dt>
            <dd data-testid="balance">{formatPoints(member.balance)}</dd>
            <dt>Held</dt>
            <dd>{formatPoints(member.held)}</dd>
            <dt>Available</dt>
            <dd>{formatPoints(member.available)}</dd>
            <dt>Expires</dt>
            <dd>{formatTime(member.expiresAt)}</dd>
            <dt>Status</dt>
            <dd>{member.status + (member.mergedInto ? ` into ${member.mergedInto}` : '')}</dd>
          </dl>
          <p>
            <WorkflowLink workflowId={member.workflowId} label="The member's workflow in the Temporal UI" />
          </p>
          <AdjustmentForm
            key={`${shown!.programId}:${member.memberId}`}
            programId={shown!.programId}
            memberId={member.memberId}
            onApplied={() => void search()}
          />
          <h3>Redemptions</h3>
          {redemptions.length === 0 ? (
            <p>No redemption in the ledger shown.</p>
          ) : (
            <table aria-label="Redemptions">
              <thead>
                <tr>
                  <th scope="col">Invoice</th>
                  <th scope="col">Status</th>
                  <th scope="col">Points</th>
                  <th scope="col">Credit</th>
                  <th scope="col">Reversed</th>
                  <th scope="col">Workflow</th>
                </tr>
              </thead>
              <tbody>
                {redemptions.map((r) => (
                  <tr key={r.invoiceId}>
                    <th scope="row">{r.invoiceId}</th>
                    <td>{r.status + (r.reason ? ` (${r.reason})` : '')}</td>
                    <td>{formatPoints(r.pointsApplied)}</td>
                    <td>{currency ? formatMoney(r.creditMinor, currency) : '…'}</td>
                    <td>{formatPoints(r.pointsReversed)} points</td>
                    <td>
                      <WorkflowLink workflowId={r.workflowId} label="The invoice's saga in the Temporal UI" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Timeline</h3>
          <ol class="timeline" aria-label="Ledger timeline, newest first">
            {entries.map((e) => (
              <li key={e.entryId}>
                <time dateTime={e.occurredAt}>{formatTime(e.occurredAt)}</time> <strong>{e.type}</strong>{' '}
                {e.points > 0 ? '+' : ''}
                {formatPoints(e.points)} points{e.reference ? ` · ${e.reference}` : ''} · by {e.actor}
              </li>
            ))}
          </ol>
        </article>
      )}
    </section>
  );
}
