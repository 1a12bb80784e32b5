import { useEffect, useState } from 'preact/hooks';
import { TextField } from './field';
import { api, failureOf, once } from './api';
import { explainRefusal } from './explain';
import { useCurrency } from './currency';
import { Proposal, type CloseView } from './proposal';
import { CloseReport } from './report';
import { firstProgram, type Session } from './sign-in';

const POLL_MS = 1000;
/** A close in one of these has no step left to follow. */
const FINAL = new Set(['locked', 'cancelled', 'failed', 'rejected']);

/** Start a quarter's close, follow its status, approve it (a controller other than the starter). */
export function ClosePage({ session }: { session: Session }) {
  const [programId, setProgramId] = useState(firstProgram(session));
  const [period, setPeriod] = useState('');
  const [close, setClose] = useState<CloseView | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [watching, setWatching] = useState(false);
  /** the close followed, as it was started or shown: polling, approving and the report go to it, whatever the fields say since */
  const [target, setTarget] = useState<{ programId: string; period: string } | null>(null);
  const fields = () => ({ programId: programId.trim(), period: period.trim() });
  const currency = useCurrency(close && target ? target.programId : '');
  const refresh = async (of: { programId: string; period: string }, quietWhileStarting = false) => {
    const res = await api.GET('/v1/programs/{programId}/closes/{period}', { params: { path: of } });
    if (res.data) {
      setClose(res.data as CloseView);
      setWatching(!FINAL.has((res.data as CloseView).status));
    } else if (!(quietWhileStarting && res.response.status === 404)) {
      setMessage(explainRefusal(failureOf(res.error, res.response.status), 'this close'));
      setWatching(false);
    }
  };
  const follow = (of: { programId: string; period: string }) => {
    setTarget(of);
    setClose(null);
    setMessage(null);
    setNotice(null);
  };
  // live: the close's status and step, every POLL_MS while it runs
  useEffect(() => {
    if (!watching || !target) return;
    const timer = setInterval(() => void refresh(target, true), POLL_MS);
    return () => clearInterval(timer);
  }, [watching, target]);
  const start = async (e: Event) => {
    e.preventDefault();
    const of = fields();
    follow(of);
    const res = await api.POST('/v1/programs/{programId}/closes', {
      params: { path: { programId: of.programId }, header: once() },
      body: { period: of.period },
    });
    if (!res.response.ok)
      return setMessage(explainRefusal(failureOf(res.error, res.response.status), 'starting this close'));
    setNotice('Started: its steps follow below as they run.');
    setWatching(true);
  };
  const show = () => {
    const of = fields();
    follow(of);
    void refresh(of);
  };
  const approve = async () => {
    if (!target) return;
    setMessage(null);
    const res = await api.POST('/v1/programs/{programId}/closes/{period}/approve', {
      params: { path: target, header: once() },
    });
    if (!res.response.ok) return setMessage(explainRefusal(failureOf(res.error, res.response.status), 'this close'));
    setNotice('Approved.');
    await refresh(target);
  };
  return (
    <section aria-labelledby="close-title">
      <h2 id="close-title">Quarterly close</h2>
      <form onSubmit={start} class="row">
        <TextField
          id="close-program"
          label="Program"
          list="known-programs"
          required
          value={programId}
          onValue={setProgramId}
        />
        <TextField
          id="close-period"
          label="Period"
          required
          placeholder="2026-Q4"
          pattern="2[0-9]{3}-Q[1-4]"
          value={period}
          onValue={setPeriod}
        />
        <button type="submit">Start close</button>
        <button type="button" onClick={show}>
          Show
        </button>
      </form>
      {notice && <p role="status">{notice}</p>}
      {message && <p role="alert">{message}</p>}
      {close && (
        <article aria-label={`Close ${close.period}`}>
          <p>
            Status:{' '}
            <strong data-testid="close-status">
              {close.status}
              {close.step ? ` · step ${close.step}` : ''}
            </strong>
          </p>
          {!FINAL.has(close.status) && (
            <button type="button" onClick={() => void approve()}>
              Approve close
            </button>
          )}
          {currency && <Proposal close={close} currency={currency} />}
          <details>
            <summary>The close as the API answers it</summary>
            <pre>{JSON.stringify(close, null, 2)}</pre>
          </details>
          {/* the report once there is a proposal to read; fetched again when the status moves on */}
          {close.status !== 'frozen' && close.status !== 'starting' && (
            <CloseReport key={close.status} programId={target!.programId} period={close.period} />
          )}
        </article>
      )}
    </section>
  );
}
