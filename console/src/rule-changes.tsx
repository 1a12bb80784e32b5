import { useEffect, useRef, useState } from 'preact/hooks';
import { api, failureOf, once, type ApiFailure } from './api';
import { explainRefusal } from './explain';
import { TextField } from './field';
import { decimalToMinor, formatMoney, formatPoints, formatTime, minorToDecimal } from './format';
import { firstProgram, type Session } from './sign-in';

// Rule changes: the program owner edits the earn rate, the point value and the expiry window, reads
// the impact (POST .../quotes/rule-change, which writes nothing) and only then proposes; everyone
// with a reading role follows the approvals and the notice period of the changes proposed.

type Rules = Record<string, unknown> & {
  pointValueMinor: number;
  earn: { points: number; perAmountMinor: number };
  expiry: { policy: 'rolling' | 'none'; window?: string };
  accounting?: { method: string; notMaterialRight?: unknown };
};
interface Program {
  /** the program opened: assessing, proposing and following go to it, whatever the field says since */
  programId: string;
  currency: string;
  currencyDigits: number;
  version: number;
  rules: Rules;
}
export interface Impact {
  adverse: string[];
  outstandingPoints: number;
  expectedRedemptionValueMinor: { before: number; after: number; change: number };
  pointsPer10000Minor: { before: number; after: number };
  earlierExpiry: { members: number; points: number; alreadyPast: { members: number; points: number } };
}
interface Quote {
  baseVersion: number;
  impact: Impact;
  requiredRoles: string[];
  noticePeriod: string | null;
}
interface Change {
  changeId: string;
  status: string;
  effectiveAt: string;
  proposedBy: string;
  activatesAt?: string | null;
  approvals?: Array<{ role: string; by: string; decision: string }>;
  /** null while assessing */
  adverse?: boolean | null;
}

/** The fields of GET /v1/programs/{id} that are not the rules in force. */
const PROGRAM_FIELDS = [
  'programId',
  'name',
  'currency',
  'currencyDigits',
  'activeRuleVersion',
  'createdAt',
  'createdBy',
];
const FOLLOW_MS = 3000;
const CHANGES_READ = 500;
const CHANGES_SHOWN = 20;
const OPEN = new Set(['assessing', 'awaiting_approvals', 'scheduled']);

async function loadProgram(programId: string): Promise<Program> {
  const res = await api.GET('/v1/programs/{programId}', { params: { path: { programId } } });
  if (!res.data) throw failureOf(res.error, res.response.status);
  const view = res.data as Record<string, unknown>;
  const rules = Object.fromEntries(
    Object.entries(view).filter(([k]) => !PROGRAM_FIELDS.includes(k) && k !== 'scheduledRuleVersions'),
  ) as Rules;
  // the material-right judgment in force is kept by the API when the method stays; a new one is the
  // proposer's (its who and when are stamped by the API), so the recorded one is not sent back
  if (rules.accounting?.notMaterialRight) {
    const { notMaterialRight: _kept, ...accounting } = rules.accounting;
    rules.accounting = accounting;
  }
  return {
    programId,
    currency: res.data.currency,
    currencyDigits: res.data.currencyDigits,
    version: res.data.activeRuleVersion.version,
    rules,
  };
}

const newChangeId = () => `rc-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 4)}`;
const inDays = (days: number) => {
  const d = new Date(Date.now() + days * 86_400_000);
  d.setSeconds(0, 0);
  return d;
};
/** A Date as a datetime-local input's value, in the user's time zone. */
const localInput = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

export function RuleChangesPage({ session }: { session: Session }) {
  const [programId, setProgramId] = useState(firstProgram(session));
  const [program, setProgram] = useState<Program | null>(null);
  const [changes, setChanges] = useState<Change[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [form, setForm] = useState({
    earnPoints: '',
    earnPer: '',
    pointValue: '',
    policy: 'rolling',
    window: '',
    effectiveAt: localInput(inDays(31)),
    changeId: '',
    comment: '',
  });
  const [quote, setQuote] = useState<Quote | null>(null);
  const pid = program?.programId ?? '';
  const set = (field: keyof typeof form) => (v: string) => {
    setForm((f) => ({ ...f, [field]: v }));
    setQuote(null); // an edit needs a new assessment before it is proposed
  };
  const refused = (f: ApiFailure, what: string) => setMessage(explainRefusal(f, what));

  // the list is oldest first: the newest CHANGES_SHOWN of a first page of CHANGES_READ
  const refreshChanges = async (of = pid) => {
    const res = await api.GET('/v1/programs/{programId}/rule-changes', {
      params: { path: { programId: of }, query: { limit: CHANGES_READ } },
    });
    if (res.data) setChanges(((res.data.items ?? []) as unknown as Change[]).slice(-CHANGES_SHOWN).reverse());
  };
  // the latest Open wins: the page opens the first program by itself, and an Open clicked meanwhile
  // must not have its form overwritten when the earlier read answers
  const opening = useRef(0);
  const open = async (e?: Event) => {
    e?.preventDefault();
    const mine = ++opening.current;
    setMessage(null);
    setQuote(null);
    setProgram(null); // nothing is edited until the program read is the one asked for
    try {
      const p = await loadProgram(programId.trim());
      if (mine !== opening.current) return;
      setProgram(p);
      setForm((f) => ({
        ...f,
        earnPoints: String(p.rules.earn.points),
        earnPer: minorToDecimal(p.rules.earn.perAmountMinor, p.currencyDigits),
        pointValue: minorToDecimal(p.rules.pointValueMinor, p.currencyDigits),
        policy: p.rules.expiry.policy,
        window: p.rules.expiry.window ?? '',
        changeId: newChangeId(),
      }));
      await refreshChanges(p.programId);
    } catch (f) {
      if (mine === opening.current) refused(f as ApiFailure, 'this program');
    }
  };
  useEffect(() => {
    if (programId.trim()) void open();
  }, []);
  // follow the changes still under way: their approvals, the notice period, the activation
  useEffect(() => {
    if (!changes.some((c) => OPEN.has(c.status))) return;
    const timer = setInterval(() => void refreshChanges(), FOLLOW_MS);
    return () => clearInterval(timer);
  }, [changes, pid]);

  /** The rules as the form has them, or why not. */
  const proposedRules = (): Rules | string => {
    if (!program) return 'open a program first';
    const points = Number(form.earnPoints);
    const per = decimalToMinor(form.earnPer, program.currencyDigits);
    const value = decimalToMinor(form.pointValue, program.currencyDigits);
    if (!Number.isSafeInteger(points) || points <= 0) return 'points earned must be a whole number above 0';
    if (per === null || per <= 0) return `the spend must be an amount in ${program.currency} above 0`;
    if (value === null || value <= 0) return `a point’s value must be an amount in ${program.currency} above 0`;
    const expiry =
      form.policy === 'none'
        ? { ...program.rules.expiry, policy: 'none' as const, window: undefined }
        : { ...program.rules.expiry, policy: 'rolling' as const, window: form.window.trim() };
    return { ...program.rules, earn: { points, perAmountMinor: per }, pointValueMinor: value, expiry };
  };
  const assess = async (e: Event) => {
    e.preventDefault();
    setMessage(null);
    setNotice(null);
    const rules = proposedRules();
    if (typeof rules === 'string') return setMessage(rules);
    const res = await api.POST('/v1/programs/{programId}/quotes/rule-change', {
      params: { path: { programId: pid } },
      body: { rules, baseVersion: program!.version } as never,
    });
    if (!res.data) return refused(failureOf(res.error, res.response.status), 'assessing this change');
    setQuote(res.data as unknown as Quote);
  };
  const propose = async () => {
    setMessage(null);
    const rules = proposedRules();
    if (typeof rules === 'string' || !quote) return;
    const res = await api.POST('/v1/programs/{programId}/rule-changes', {
      params: { path: { programId: pid }, header: once() },
      body: {
        changeId: form.changeId.trim(),
        effectiveAt: new Date(form.effectiveAt).toISOString(),
        rules,
        baseVersion: quote.baseVersion,
        ...(form.comment.trim() ? { comment: form.comment.trim() } : {}),
      } as never,
    });
    if (!res.response.ok) return refused(failureOf(res.error, res.response.status), 'proposing this change');
    setNotice(`Proposed as ${form.changeId.trim()}: it awaits ${quote.requiredRoles.join(' and ')}.`);
    setQuote(null);
    // the next proposal is another change: a fresh id (this one is taken now)
    setForm((f) => ({ ...f, changeId: newChangeId() }));
    await refreshChanges();
  };

  const money = (minor: number) => formatMoney(minor, program?.currency ?? 'XXX');
  const canPropose = session.roles.includes('program_owner') || session.roles.includes('admin');
  return (
    <section aria-labelledby="rules-title">
      <h2 id="rules-title">Rule changes</h2>
      <form class="row" onSubmit={open}>
        <TextField
          id="rules-program"
          label="Program"
          list="known-programs"
          required
          value={programId}
          onValue={setProgramId}
        />
        <button type="submit">Open</button>
      </form>
      {message && <p role="alert">{message}</p>}
      {notice && <p role="status">{notice}</p>}
      {program && (
        <>
          <p>
            In force: version {program.version}: {formatPoints(program.rules.earn.points)}{' '}
            {program.rules.earn.points === 1 ? 'point' : 'points'} per {money(program.rules.earn.perAmountMinor)}, a
            point worth {money(program.rules.pointValueMinor)}, expiry{' '}
            {program.rules.expiry.policy === 'none'
              ? 'none'
              : `after ${program.rules.expiry.window} without a purchase`}
            .
          </p>
          {canPropose ? (
            <form class="grid-form" onSubmit={assess} aria-label="Propose a rule change">
              <TextField
                id="rc-earn-points"
                label="Points earned"
                inputMode="numeric"
                required
                value={form.earnPoints}
                onValue={set('earnPoints')}
              />
              <TextField
                id="rc-earn-per"
                label={`per spend of (${program.currency})`}
                inputMode="decimal"
                required
                value={form.earnPer}
                onValue={set('earnPer')}
              />
              <TextField
                id="rc-point-value"
                label={`A point’s value (${program.currency})`}
                inputMode="decimal"
                required
                value={form.pointValue}
                onValue={set('pointValue')}
              />
              <label for="rc-policy">Expiry</label>
              <select
                id="rc-policy"
                value={form.policy}
                onChange={(e) => set('policy')((e.target as HTMLSelectElement).value)}
              >
                <option value="rolling">after a window without a purchase</option>
                <option value="none">never</option>
              </select>
              {form.policy === 'rolling' && (
                <TextField
                  id="rc-window"
                  label="Window (ISO 8601, e.g. P12M)"
                  required
                  value={form.window}
                  onValue={set('window')}
                />
              )}
              <label for="rc-effective">Effective at</label>
              <input
                id="rc-effective"
                type="datetime-local"
                required
                value={form.effectiveAt}
                onInput={(e) => set('effectiveAt')((e.target as HTMLInputElement).value)}
              />
              <TextField id="rc-id" label="Change id" required value={form.changeId} onValue={set('changeId')} />
              <TextField id="rc-comment" label="Comment" value={form.comment} onValue={set('comment')} />
              <button type="submit">Assess impact</button>
            </form>
          ) : (
            <p>Only a program owner proposes rule changes; you can follow them below.</p>
          )}
          {quote && (
            <article aria-label="Impact assessment" class="impact">
              <h3>Impact assessment</h3>
              <ImpactFigures impact={quote.impact} currency={program.currency} />
              <dl class="figures">
                <dt>Approvals needed</dt>
                <dd>{quote.requiredRoles.join(', ')}</dd>
                <dt>Notice after approval</dt>
                <dd>{quote.noticePeriod ?? 'none (not adverse)'}</dd>
              </dl>
              <button type="button" onClick={() => void propose()}>
                Propose this change
              </button>
            </article>
          )}
          <h3>Changes proposed</h3>
          {changes.length === 0 ? (
            <p>None yet.</p>
          ) : (
            <ul class="inbox" aria-label="Changes proposed">
              {changes.map((c) => (
                <li key={c.changeId}>
                  <strong>{c.changeId}</strong>:{' '}
                  <span data-testid={`rc-status-${c.changeId}`}>{c.status.replace('_', ' ')}</span>; effective{' '}
                  {formatTime(c.effectiveAt)}
                  {c.activatesAt ? `, takes effect ${formatTime(c.activatesAt)} (after its notice)` : ''}; proposed by{' '}
                  {c.proposedBy}.{' '}
                  {c.adverse === true
                    ? 'Adverse to members: its notice period follows the approvals. '
                    : c.adverse === false
                      ? 'Not adverse. '
                      : ''}
                  {(c.approvals ?? []).length
                    ? `Decisions: ${(c.approvals ?? []).map((a) => `${a.role} ${a.decision} by ${a.by}`).join(', ')}.`
                    : 'No decision yet.'}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

/** What a rule change does to the members and the liability, as the API assessed it. */
export function ImpactFigures({ impact, currency }: { impact: Impact; currency: string }) {
  const money = (minor: number) => formatMoney(minor, currency);
  return (
    <dl class="figures">
      <dt>Adverse to members</dt>
      <dd data-testid="adverse">{impact.adverse.length ? impact.adverse.join('; ') : 'no'}</dd>
      <dt>Points outstanding</dt>
      <dd>{formatPoints(impact.outstandingPoints)}</dd>
      <dt>Expected redemption value</dt>
      <dd>
        {money(impact.expectedRedemptionValueMinor.before)} → {money(impact.expectedRedemptionValueMinor.after)} (
        {money(impact.expectedRedemptionValueMinor.change)})
      </dd>
      <dt>Points per {money(10_000)} spent</dt>
      <dd>
        {formatPoints(impact.pointsPer10000Minor.before)} → {formatPoints(impact.pointsPer10000Minor.after)}
      </dd>
      <dt>Members whose deadline moves earlier</dt>
      <dd>
        {formatPoints(impact.earlierExpiry.members)} ({formatPoints(impact.earlierExpiry.points)} points;{' '}
        {formatPoints(impact.earlierExpiry.alreadyPast.members)} already past it)
      </dd>
    </dl>
  );
}
