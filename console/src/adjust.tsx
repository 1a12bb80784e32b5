import { useState } from 'preact/hooks';
import { TextField } from './field';
import { api, failureOf, once } from './api';
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
  const submit = async (e: Event) => {
    e.preventDefault();
    setNotice(null);
    setError(null);
    const n = Number(points);
    if (!Number.isSafeInteger(n) || n === 0)
      return setError('Points: a whole number other than 0 (negative takes points away).');
    const res = await api.POST('/v1/programs/{programId}/adjustments', {
      params: { path: { programId: props.programId }, header: once() },
      body: { memberId: props.memberId, points: n, reasonCode: reason, ...(comment ? { comment } : {}) },
    });
    if (!res.data) return setError(explainRefusal(failureOf(res.error, res.response.status), 'this adjustment'));
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
        <TextField id="adjust-points" label="Points" inputMode="numeric" required value={points} onValue={setPoints} />
        <label for="adjust-reason">Reason code</label>
        <select
          id="adjust-reason"
          value={reason}
          onChange={(e) => setReason((e.target as HTMLSelectElement).value as Reason)}
        >
          {REASONS.map((r) => (
            <option key={r} value={r}>
              {r.replace('_', ' ')}
            </option>
          ))}
        </select>
        <TextField id="adjust-comment" label="Comment" maxLength={2000} value={comment} onValue={setComment} />
        <button type="submit">Adjust</button>
      </div>
      {notice && <p role="status">{notice}</p>}
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
