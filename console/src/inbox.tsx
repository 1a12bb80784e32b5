import { useEffect, useState } from 'preact/hooks';
import { api, failureOf, once } from './api';
import { explainRefusal } from './explain';
import { formatMoney, formatPoints, formatTime } from './format';
import { useCurrency } from './currency';
import { Proposal, type CloseView } from './proposal';
import { ImpactFigures, type Impact } from './rule-changes';
import { CloseReport } from './report';
import type { Session } from './sign-in';

interface InboxItem {
  kind: 'close' | 'adjustment' | 'merge' | 'rule_change';
  programId: string;
  id: string;
  awaitingRole: string;
  requestedBy: string;
  requestedAt: string;
  [field: string]: unknown;
}

const KIND_NAMES: Record<InboxItem['kind'], string> = {
  close: 'Quarterly close',
  adjustment: 'Manual adjustment',
  merge: 'Member merge',
  rule_change: 'Rule change',
};

const what = (i: InboxItem) => `this ${KIND_NAMES[i.kind].toLowerCase()}`;

/** Sends a decision to the item's own endpoint; answers an explanation of a refusal, or null. */
async function decide(item: InboxItem, decision: 'approve' | 'reject', comment: string): Promise<string | null> {
  const programId = item.programId;
  const body = comment ? { decision, comment } : { decision };
  let res: { error?: unknown; response: Response };
  if (item.kind === 'close') {
    // a close is approved or left to escalate: the API has no rejection of it
    res = await api.POST('/v1/programs/{programId}/closes/{period}/approve', {
      params: { path: { programId, period: item.id }, header: once() },
    });
  } else if (item.kind === 'rule_change') {
    res = await api.POST('/v1/programs/{programId}/rule-changes/{changeId}/approvals', {
      params: { path: { programId, changeId: item.id }, header: once() },
      body,
    });
  } else {
    res = await api.POST('/v1/programs/{programId}/adjustments/{adjustmentId}/approvals', {
      params: { path: { programId, adjustmentId: item.id }, header: once() },
      body,
    });
  }
  return res.response.ok ? null : explainRefusal(failureOf(res.error, res.response.status), what(item));
}

function Evidence({ item }: { item: InboxItem }) {
  const currency = useCurrency(item.kind === 'close' ? item.programId : '');
  const rows: Array<[string, string]> = [];
  if (item.kind === 'close') {
    rows.push(['Period', String(item.period)], ['Status', String(item.status)]);
    if (item.totalCatchUpMinor !== null && item.totalCatchUpMinor !== undefined)
      rows.push(['Catch-up', currency ? formatMoney(Number(item.totalCatchUpMinor), currency) : '…']);
    if (item.override) rows.push(['Rate override', JSON.stringify(item.override)]);
  } else if (item.kind === 'rule_change') {
    rows.push(['Effective', formatTime(item.effectiveAt as string)], ['Adverse', item.adverse ? 'yes' : 'no']);
  } else {
    rows.push(['Member', String(item.memberId)], ['Points', formatPoints(Number(item.points))]);
    if (item.intoMemberId) rows.push(['Into member', String(item.intoMemberId)]);
    rows.push(['Reason', `${String(item.reasonCode ?? '')} ${String(item.comment ?? '')}`.trim()]);
  }
  return (
    <dl>
      {rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

/** A close's proposal, steps and draft report, read when the approver opens them. */
function CloseEvidence({ programId, period }: { programId: string; period: string }) {
  const [open, setOpen] = useState(false);
  const [close, setClose] = useState<CloseView | null>(null);
  const currency = useCurrency(programId);
  useEffect(() => {
    if (!open || close) return;
    void api
      .GET('/v1/programs/{programId}/closes/{period}', { params: { path: { programId, period } } })
      .then((r) => r.data && setClose(r.data as unknown as CloseView));
  }, [open]);
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>The proposal, its steps and the draft report</summary>
      {open && close && currency && <Proposal close={close} currency={currency} />}
      {open && <CloseReport programId={programId} period={period} />}
    </details>
  );
}

/** A rule change's terms and its impact assessment, read when the approver opens them. */
function RuleChangeEvidence({ programId, changeId }: { programId: string; changeId: string }) {
  const [open, setOpen] = useState(false);
  const [change, setChange] = useState<{ impact?: Impact | null; comment?: string | null } | null>(null);
  const currency = useCurrency(programId);
  useEffect(() => {
    if (!open || change) return;
    void api
      .GET('/v1/programs/{programId}/rule-changes/{changeId}', { params: { path: { programId, changeId } } })
      .then((r) => r.data && setChange(r.data as never));
  }, [open]);
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Its impact assessment</summary>
      {change?.comment && <p>Proposer’s comment: {change.comment}</p>}
      {change?.impact && currency && <ImpactFigures impact={change.impact} currency={currency} />}
    </details>
  );
}

function Item({ item, onDecided }: { item: InboxItem; onDecided: () => void }) {
  const [comment, setComment] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const act = async (decision: 'approve' | 'reject') => {
    const refusal = await decide(item, decision, comment);
    if (refusal) setMessage(refusal);
    else onDecided();
  };
  const label = `${KIND_NAMES[item.kind]} ${item.id} in ${item.programId}`;
  return (
    <li aria-label={label}>
      <h3>{label}</h3>
      <p>
        Requested by {item.requestedBy} on {formatTime(item.requestedAt)}; awaits {item.awaitingRole}.
      </p>
      <Evidence item={item} />
      {item.kind === 'close' && <CloseEvidence programId={item.programId} period={item.id} />}
      {item.kind === 'rule_change' && <RuleChangeEvidence programId={item.programId} changeId={item.id} />}
      {item.kind !== 'close' && (
        <>
          <label for={`comment-${item.kind}-${item.id}`}>Reason</label>
          <input
            id={`comment-${item.kind}-${item.id}`}
            value={comment}
            maxLength={2000}
            onInput={(e) => setComment((e.target as HTMLInputElement).value)}
          />
        </>
      )}
      <button type="button" onClick={() => void act('approve')}>
        Approve
      </button>
      {item.kind !== 'close' && (
        <button type="button" onClick={() => void act('reject')}>
          Reject
        </button>
      )}
      {message && <p role="alert">{message}</p>}
    </li>
  );
}

/** Everything awaiting a role the user holds, the user's own requests excluded (GET /v1/approvals). */
export function InboxPage({ session }: { session: Session }) {
  const [items, setItems] = useState<InboxItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const load = async () => {
    const { data, error: failure, response } = await api.GET('/v1/approvals', { params: { query: { limit: 100 } } });
    if (!data) return setError(explainRefusal(failureOf(failure, response.status), 'the inbox'));
    setItems(data.items as InboxItem[]);
  };
  useEffect(() => {
    void load();
  }, [session.principal]);
  return (
    <section aria-labelledby="inbox-title">
      <h2 id="inbox-title">Approval inbox</h2>
      <button type="button" onClick={() => void load()}>
        Refresh
      </button>
      {done && <p role="status">{done}</p>}
      {error && <p role="alert">{error}</p>}
      {items !== null && items.length === 0 && <p>Nothing awaits your decision.</p>}
      <ul class="inbox">
        {(items ?? []).map((i) => (
          <Item
            key={`${i.kind}:${i.programId}:${i.id}`}
            item={i}
            onDecided={() => {
              setDone(`Decided: ${KIND_NAMES[i.kind]} ${i.id}`);
              void load();
            }}
          />
        ))}
      </ul>
    </section>
  );
}
