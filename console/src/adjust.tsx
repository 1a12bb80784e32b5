import { useState } from 'preact/hooks';
import { TextField } from './field';
import { api, failureOf } from './api';
import { explainRefusal } from './explain';
import { formatPoints } from './format';

const REASONS = ['goodwill', 'service_recovery', 'correction', 'migration', 'fraud'] as const;
type Reason = (typeof REASONS)[number];

/**
 * A manual adjustment of one member (POST …/adjustments). The API decides whether it needs a finance
 * approval (the program's threshold, counted over its rolling window): applied now (201), or waiting
 * in finance's inbox (202).
 */
export function AdjustmentForm(props: { programId: string; memberId: string; onApplied: () => void }) {
  const [points, setPoints] = useState('');
  const [reason, setReason] = useState<Reason>('goodwill');
  const [comment, setComment] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // one Idempotency-Key per adjustment as the form holds it: a second click, or a retry after no
  // answer, sends the same key and is answered once; an edit of the form is another adjustment
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const edit = (set: (v: string) => void) => (v: string) => {
    set(v);
    setKey(crypto.randomUUID());
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setNotice(null);
    setError(null);
    const n = /^\s*-?\d+\s*$/.test(points) ? Number(points) : NaN;
    if (!Number.isSafeInteger(n) || n === 0)
      return setError('Points: a whole number other than 0 (negative takes points away).');
    setBusy(true);
    const res = await api
      .POST('/v1/programs/{programId}/adjustments', {
        params: { path: { programId: props.programId }, header: { 'idempotency-key': key } },
        body: { memberId: props.memberId, points: n, reasonCode: reason, ...(comment ? { comment } : {}) },
      })
      .finally(() => setBusy(false));
    if (!res.data) return setError(explainRefusal(failureOf(res.error, res.response.status), 'this adjustment'));
    setKey(crypto.randomUUID());
    setPoints('');
    setComment('');
    if (res.response.status === 202 || res.data.status === 'pending_approval') {
      setNotice(
        `${formatPoints(n)} points is above what support may move alone: adjustment ${res.data.adjustmentId} awaits a finance approval (it is in their inbox).`,
      );
    } else {
      setNotice(`Applied: ${formatPoints(n)} points (adjustment ${res.data.adjustmentId}).`);
      props.onApplied();
    }
  };
  return (
    <form onSubmit={submit} aria-labelledby="adjust-title">
      <h3 id="adjust-title">Manual adjustment</h3>
      <div class="row">
        <TextField
          id="adjust-points"
          label="Points"
          inputMode="numeric"
          required
          value={points}
          onValue={edit(setPoints)}
        />
        <label for="adjust-reason">Reason code</label>
        <select
          id="adjust-reason"
          value={reason}
          onChange={(e) => {
            setReason((e.target as HTMLSelectElement).value as Reason);
            setKey(crypto.randomUUID());
          }}
        >
          {REASONS.map((r) => (
            <option key={r} value={r}>
              {r.replace('_', ' ')}
            </option>
          ))}
        </select>
        <TextField id="adjust-comment" label="Comment" maxLength={2000} value={comment} onValue={edit(setComment)} />
        <button type="submit" disabled={busy}>
          Adjust
        </button>
      </div>
      {notice && <p role="status">{notice}</p>}
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
