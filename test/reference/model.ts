/**
 * A reference model of the ledger's accounting, written from the standard's formulas and
 * docs/accounting.md, not from the SQL: exact rationals (./fraction), one function per event. It
 * knows nothing of stripes, journals or idempotency; it keeps, per cohort, what the standard needs:
 *
 *   N  points issued less revoked        A  allocation, exact (relative SSP: a = P·S/(P+S), S = n·v·u)
 *   R  points redeemed (net of reversals) posted  the allocation as posted (each accrual round(a))
 *   X  points expired                    u  the ultimate redemption estimate
 *   recognised = min(round(A · min(1, R/(N·u))), posted); all of posted once R + X >= N
 *
 * and per member the points they hold in each cohort. test/integration/reference-model.test.ts drives
 * the same events through the database and compares.
 */
import { Fraction, ONE, ZERO } from './fraction';

export interface ProgramTerms {
  pointValueMinor: bigint;
  earnPoints: bigint;
  earnPerAmountMinor: bigint;
  /** the rule's expectedRedemptionRate, exactly (prices accruals and goodwill until a close sets an estimate) */
  rate: Fraction;
}

export interface Cohort {
  name: string;
  goodwill: boolean;
  N: bigint;
  R: bigint;
  X: bigint;
  A: Fraction;
  posted: bigint;
  u: Fraction;
  recognised: bigint;
  /** an accrual since the last re-measurement: the formula's figure may differ from the posted one */
  stale: boolean;
  /** every change of N, R and X with its date: a close's bounds are as of the period's end */
  moves: Array<{ at: number; dN: bigint; dR: bigint; dX: bigint }>;
  /** every change of the allocation and the recognised figure with the date it is booked at (the close report is as of the period's end) */
  money: Array<{ at: number; dA: Fraction; dPosted: bigint; dRecognised: bigint }>;
  stamped: { A: Fraction; posted: bigint; recognised: bigint };
}

export interface Member {
  id: string;
  active: boolean;
  mergedInto: string | null;
  points: Map<string, bigint>;
  /** a deadline is set (the test dates every deadline before the expiry's as-of and after every merge) */
  armed: boolean;
  purchased: boolean;
  /** expiry entries written for the member (a hold released after one expires its points) */
  expiries: number;
}

export interface Hold {
  invoiceId: string;
  memberId: string;
  cohorts: Map<string, bigint>;
  at: Date;
  open: boolean;
  expiriesBefore: number;
}

export interface Accrual {
  invoiceId: string;
  memberId: string;
  cohort: string;
  amount: bigint;
  points: bigint;
  exact: Fraction;
  posted: bigint;
  refunded: bigint;
}

export interface Redemption {
  invoiceId: string;
  memberId: string;
  cohorts: Map<string, bigint>;
  reversed: boolean;
}

/** round(n·(before+part)/total) − round(n·before/total): a cumulative share, so the parts add up to n. */
export function prorate(n: bigint | Fraction, before: bigint, part: bigint, total: bigint): bigint {
  const x = Fraction.of(n);
  return (
    x
      .mul(before + part)
      .div(total)
      .round() - x.mul(before).div(total).round()
  );
}

const isGoodwill = (cohort: string) => cohort.endsWith('-goodwill');
/** expiries are dated at the member's deadline, in this test always after every period closed */
const FAR = Date.UTC(2099, 0, 1);
const move = (c: Cohort, at: Date | number, d: { dN?: bigint; dR?: bigint; dX?: bigint }) => {
  c.N += d.dN ?? 0n;
  c.R += d.dR ?? 0n;
  c.X += d.dX ?? 0n;
  c.moves.push({ at: typeof at === 'number' ? at : at.getTime(), dN: d.dN ?? 0n, dR: d.dR ?? 0n, dX: d.dX ?? 0n });
};
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const bmin = (a: bigint, b: bigint) => (a < b ? a : b);
const bmax = (a: bigint, b: bigint) => (a > b ? a : b);

/** The quarter of a UTC instant: 2026-Q4. */
export function quarter(at: Date): string {
  return `${at.getUTCFullYear()}-Q${Math.floor(at.getUTCMonth() / 3) + 1}`;
}

export class ReferenceModel {
  readonly cohorts = new Map<string, Cohort>();
  readonly members = new Map<string, Member>();
  readonly accruals = new Map<string, Accrual>();
  readonly redemptions = new Map<string, Redemption>();
  readonly holds = new Map<string, Hold>();
  /** the estimate new points (purchased and goodwill) are priced at: the rule's until a close sets one */
  newPointsRate: Fraction;

  constructor(readonly terms: ProgramTerms) {
    this.newPointsRate = terms.rate;
  }

  // ---- helpers ----

  member(id: string): Member {
    let m = this.members.get(id);
    if (!m) {
      m = { id, active: true, mergedInto: null, points: new Map(), armed: false, purchased: false, expiries: 0 };
      this.members.set(id, m);
    }
    return m;
  }
  /** the member who holds a member's points now (a merged member's survivor) */
  current(id: string): Member {
    let m = this.member(id);
    while (m.mergedInto) m = this.member(m.mergedInto);
    return m;
  }
  balance(m: Member): bigint {
    let b = 0n;
    for (const p of m.points.values()) b += p;
    return b;
  }
  private cohort(name: string, u: Fraction): Cohort {
    let c = this.cohorts.get(name);
    if (!c) {
      c = {
        name,
        goodwill: isGoodwill(name),
        N: 0n,
        R: 0n,
        X: 0n,
        A: ZERO,
        posted: 0n,
        u,
        recognised: 0n,
        stale: false,
        moves: [],
        money: [],
        stamped: { A: ZERO, posted: 0n, recognised: 0n },
      };
      this.cohorts.set(name, c);
    }
    return c;
  }
  private add(m: Member, cohort: string, d: bigint) {
    m.points.set(cohort, (m.points.get(cohort) ?? 0n) + d);
    if ((m.points.get(cohort) ?? 0n) < 0n) throw new Error(`model: ${m.id} negative in ${cohort}`);
  }
  /** What the member's holds (redemptions in progress) take of a cohort. */
  held(m: Member, cohort?: string): bigint {
    let h = 0n;
    for (const x of this.holds.values())
      if (x.open && x.memberId === m.id)
        for (const [c, p] of x.cohorts) if (cohort === undefined || c === cohort) h += p;
    return h;
  }
  /** What the member can spend, expire or have revoked: the balance less what holds took. */
  available(m: Member): bigint {
    return this.balance(m) - this.held(m);
  }
  /** The member's cohorts with points available (not held), oldest first (by name: '2026-Q4' before '2026-Q4-goodwill'). */
  private oldestFirst(m: Member): Array<[string, bigint]> {
    return [...m.points.entries()]
      .map(([c, p]): [string, bigint] => [c, p - this.held(m, c)])
      .filter(([, p]) => p > 0n)
      .sort(([a], [b]) => byName(a, b));
  }

  /** Recognised to date (docs/accounting.md, "Recognition" and "capped at what was posted"). */
  static recognisedToDate(c: Cohort): bigint {
    const posted = bmax(c.posted, 0n);
    if (c.N <= 0n || c.R + c.X >= c.N) return posted;
    const A = c.A.max(ZERO);
    const ratio = new Fraction(c.R).div(c.u.mul(c.N)).min(ONE);
    return bmin(A.mul(ratio).round(), posted);
  }
  private remeasure(c: Cohort) {
    c.recognised = ReferenceModel.recognisedToDate(c);
    c.stale = false;
  }
  /**
   * Points that came back (a redemption given back, points added by hand) to a member whose deadline
   * had passed and been expired get a deadline again (docs/accounting.md, "Points given back after
   * their deadline"): by the rule, the last purchase plus the window, so armed again.
   */
  private rearm(m: Member) {
    if (m.active && !m.armed && m.purchased && this.available(m) > 0n) m.armed = true;
  }
  liability(c: Cohort): bigint {
    return c.posted - c.recognised;
  }

  // ---- events ----

  /** A purchase of P earning n = floor(P·points/per) points: a = P·S/(P+S), S = n·v·u, in the quarter of the earn date. */
  accrue(memberId: string, invoiceId: string, amount: bigint, occurredAt: Date): Accrual {
    const t = this.terms;
    const n = (amount * t.earnPoints) / t.earnPerAmountMinor;
    const u = this.newPointsRate;
    const S = u.mul(n * t.pointValueMinor);
    const a = S.isZero() || amount === 0n ? ZERO : S.mul(amount).div(S.add(amount));
    const cohortName = quarter(occurredAt);
    const c = this.cohort(cohortName, u);
    const acc: Accrual = {
      invoiceId,
      memberId,
      cohort: cohortName,
      amount,
      points: n,
      exact: a,
      posted: a.round(),
      refunded: 0n,
    };
    this.accruals.set(invoiceId, acc);
    const m = this.current(memberId);
    move(c, occurredAt, { dN: n });
    c.A = c.A.add(a);
    c.posted += acc.posted;
    this.add(m, cohortName, n);
    m.armed = true;
    m.purchased = true;
    // Not re-measured here: the ledger's accrual is a striped write that never locks the cohort, so a
    // cohort's recognised figure catches up with the accrual at the next event that re-measures it
    // (a redemption, expiry, refund, adjustment, reversal or close). Where this differs from
    // "recognised to date" (a completed cohort reopened by a new purchase keeps what its completion
    // released until then), the test reports it, it does not hide it: see reference-model.test.ts.
    c.stale = true;
    this.stamp(occurredAt);
    return acc;
  }

  /** Holds k points (at most what is available) for a redemption in progress, oldest cohorts first; nothing is recognised yet. */
  hold(memberId: string, invoiceId: string, k: bigint, at: Date): Hold {
    const m = this.current(memberId);
    if (k > this.available(m)) throw new Error('model: hold more than available');
    const h: Hold = { invoiceId, memberId: m.id, cohorts: new Map(), at, open: true, expiriesBefore: m.expiries };
    let left = k;
    for (const [name, pts] of this.oldestFirst(m)) {
      if (left === 0n) break;
      const take = bmin(left, pts);
      h.cohorts.set(name, take);
      left -= take;
    }
    this.holds.set(invoiceId, h);
    return h;
  }

  /** Spends the held points: R grows in each cohort (dated at the hold), each cohort re-measured. */
  commit(invoiceId: string): Redemption {
    const h = this.holds.get(invoiceId)!;
    h.open = false;
    const m = this.member(h.memberId);
    const r: Redemption = { invoiceId, memberId: m.id, cohorts: new Map(h.cohorts), reversed: false };
    for (const [name, take] of [...h.cohorts].sort(([a], [b]) => byName(a, b))) {
      const c = this.cohorts.get(name)!;
      this.add(m, name, -take);
      move(c, h.at, { dR: take });
      this.remeasure(c);
    }
    this.redemptions.set(invoiceId, r);
    this.stamp(h.at);
    return r;
  }

  /**
   * Compensation of a hold: its points are available again; but if an expiry wrote an entry for the
   * member since the hold, the deadline passed while they were held and they expire now (dated now);
   * otherwise a member whose deadline was cleared gets one again.
   */
  release(invoiceId: string, now: Date): bigint {
    const h = this.holds.get(invoiceId)!;
    h.open = false;
    const m = this.member(h.memberId);
    if (m.expiries > h.expiriesBefore) {
      let total = 0n;
      for (const [name, pts] of [...h.cohorts].sort(([a], [b]) => byName(a, b))) {
        const c = this.cohorts.get(name)!;
        this.add(m, name, -pts);
        move(c, now, { dX: pts });
        this.remeasure(c);
        total += pts;
      }
      m.expiries += 1;
      this.stamp(now);
      return total;
    }
    this.rearm(m);
    return 0n;
  }

  /** Redeems k points at once: a hold and its commit. */
  redeem(memberId: string, invoiceId: string, k: bigint, at: Date): Redemption {
    this.hold(memberId, invoiceId, k, at);
    return this.commit(invoiceId);
  }

  /** Gives a redemption's points back to the cohorts they came from, on whoever holds the member's points now. */
  reverseRedemption(invoiceId: string, at: Date) {
    const r = this.redemptions.get(invoiceId)!;
    if (r.reversed) return;
    const m = this.current(r.memberId);
    for (const [name, pts] of [...r.cohorts.entries()].sort(([a], [b]) => byName(a, b))) {
      const c = this.cohorts.get(name)!;
      move(c, at, { dR: -pts });
      this.add(m, name, pts);
      this.remeasure(c);
    }
    r.reversed = true;
    this.rearm(m);
    this.stamp(at);
  }

  /**
   * A refund of F (cumulatively F_before + F of an invoice of T that earned n points): revoke
   * round(n·F/T) in all, never more than the member's purchased points available (never goodwill),
   * the invoice's cohort first, then the oldest. The allocation moves only with the points: the
   * refund's share of the invoice's allocation is that of the points it should revoke, k of n (exact:
   * a·k/n; posted: round(posted·K/n) cumulatively, K the points to revoke so far), split over them,
   * the shortfall last; a cohort gives up only the part of the points revoked from it, never more
   * than it carries. (docs/accounting.md says round(a·F/T): equal at a full refund, but a refund
   * whose points round to none would move allocation without points, and the SQL that did so lost it.)
   */
  refund(
    invoiceId: string,
    amount: bigint,
    at: Date,
  ): { revoked: bigint; shortfall: bigint; cohorts: Map<string, bigint> } {
    const acc = this.accruals.get(invoiceId)!;
    const before = acc.refunded;
    if (before + amount > acc.amount || amount <= 0n) throw new Error('model: refund outside the invoice');
    const toRevoke = prorate(acc.points, before, amount, acc.amount);
    // the allocation follows the points: the invoice's, in proportion to the points to revoke of its n
    const pointsBefore = new Fraction(acc.points * before, acc.amount).round();
    const postedShare = toRevoke > 0n ? prorate(acc.posted, pointsBefore, toRevoke, acc.points) : 0n;
    const exactShare = toRevoke > 0n ? acc.exact.mul(toRevoke).div(acc.points) : ZERO;
    acc.refunded += amount;
    const m = this.current(acc.memberId);
    const own = (name: string) => (name === acc.cohort ? 0 : 1);
    const sources = this.oldestFirst(m)
      .filter(([name]) => !isGoodwill(name))
      .sort(([a], [b]) => own(a) - own(b) || byName(a, b));
    let available = 0n;
    for (const [, p] of sources) available += p;
    const revoked = bmax(bmin(toRevoke, available), 0n);
    let left = revoked;
    let cum = 0n;
    const taken = new Map<string, bigint>();
    for (const [name, pts] of sources) {
      if (left === 0n) break;
      const take = bmin(left, pts);
      const c = this.cohorts.get(name)!;
      let part = bmin(prorate(postedShare, cum, take, toRevoke), bmax(c.posted, 0n));
      let partExact = exactShare.mul(take).div(toRevoke).min(c.A.max(ZERO));
      // from another cohort: exactly what the points taken carry there (their share of the
      // cohort), so the other members' deferred revenue there does not move
      if (name !== acc.cohort && c.N > 0n) {
        const carried = bmax(c.posted, 0n);
        part = carried - new Fraction(carried * (c.N - take), c.N).round();
        partExact = c.A.max(ZERO).mul(take).div(c.N);
      }
      cum += take;
      this.add(m, name, -take);
      move(c, at, { dN: -take });
      c.posted -= part;
      c.A = c.A.sub(partExact);
      taken.set(name, take);
      this.remeasure(c);
      left -= take;
    }
    this.stamp(at);
    return { revoked, shortfall: toRevoke - revoked, cohorts: taken };
  }

  /**
   * A manual adjustment. Added points are goodwill: the quarter's goodwill cohort, valued at
   * points × v × the estimate pricing new points (the rule's before the first close). Taken points come out of the oldest cohorts and reverse their share of
   * the cohort's allocation (A·k/N exact; of the posted allocation P, P − round(P·(N − k)/N)).
   */
  adjust(memberId: string, points: bigint, now: Date) {
    const m = this.current(memberId);
    if (points > 0n) {
      const name = `${quarter(now)}-goodwill`;
      const c = this.cohort(name, this.newPointsRate);
      const value = this.newPointsRate.mul(points * this.terms.pointValueMinor);
      move(c, now, { dN: points });
      c.A = c.A.add(value);
      c.posted += value.round();
      this.add(m, name, points);
      this.remeasure(c);
      this.rearm(m);
      this.stamp(now);
      return;
    }
    let left = -points;
    if (left > this.available(m)) throw new Error('model: adjustment takes more than available');
    for (const [name, pts] of this.oldestFirst(m)) {
      if (left === 0n) break;
      const take = bmin(left, pts);
      const c = this.cohorts.get(name)!;
      const share = c.N > 0n ? c.A.mul(take).div(c.N) : ZERO;
      // as posted: the same share of what the liability carries, so the last points take all of it
      const carried = bmax(c.posted, 0n);
      if (c.N > 0n) c.posted -= carried - new Fraction(carried * (c.N - take), c.N).round();
      c.A = c.A.sub(share);
      move(c, now, { dN: -take });
      this.add(m, name, -take);
      this.remeasure(c);
      left -= take;
    }
    this.stamp(now);
  }

  /** Expiry of a member whose deadline passed: the whole available balance, oldest first; X grows. */
  expire(memberId: string): bigint {
    const m = this.member(memberId);
    if (!m.active || !m.armed) return 0n;
    let total = 0n;
    for (const [name, pts] of this.oldestFirst(m)) {
      const c = this.cohorts.get(name)!;
      this.add(m, name, -pts);
      move(c, FAR, { dX: pts });
      this.remeasure(c);
      total += pts;
    }
    m.armed = false;
    if (total > 0n) m.expiries += 1;
    this.stamp(FAR);
    return total;
  }

  /** A lost chargeback: the redemption reversed, then the invoice's own earned points clawed back (a refund of what is left of it). */
  chargeback(invoiceId: string, at: Date) {
    this.reverseRedemption(invoiceId, at);
    const acc = this.accruals.get(invoiceId);
    if (acc && acc.amount > acc.refunded) return this.refund(invoiceId, acc.amount - acc.refunded, at);
    return null;
  }

  /** Merge: the duplicate's points move to the survivor, cohort by cohort; the survivor's deadline is the later. */
  merge(fromId: string, intoId: string) {
    const f = this.member(fromId);
    const s = this.member(intoId);
    if (!f.active || !s.active || f === s) throw new Error('model: merge of inactive members');
    if (this.held(f) > 0n) throw new Error('model: merge of a member with points held');
    const moved = this.balance(f);
    for (const [name, pts] of f.points) if (pts > 0n) this.add(s, name, pts);
    f.points.clear();
    s.armed = s.armed || (moved > 0n && f.armed);
    s.purchased = s.purchased || f.purchased;
    f.active = false;
    f.mergedInto = s.id;
    f.armed = false;
  }

  /** Dates what changed in the cohorts' money since the last stamp: booked at `at`. */
  private stamp(at: Date | number) {
    const t = typeof at === 'number' ? at : at.getTime();
    for (const c of this.cohorts.values()) {
      const d = {
        at: t,
        dA: c.A.sub(c.stamped.A),
        dPosted: c.posted - c.stamped.posted,
        dRecognised: c.recognised - c.stamped.recognised,
      };
      if (!d.dA.isZero() || d.dPosted !== 0n || d.dRecognised !== 0n) c.money.push(d);
      c.stamped = { A: c.A, posted: c.posted, recognised: c.recognised };
    }
  }

  /** A cohort's money as of an instant (booked before it). */
  static moneyAsOf(c: Cohort, end: Date): { A: Fraction; posted: bigint; recognised: bigint } {
    const f = { A: ZERO, posted: 0n, recognised: 0n };
    for (const m of c.money)
      if (m.at < end.getTime()) {
        f.A = f.A.add(m.dA);
        f.posted += m.dPosted;
        f.recognised += m.dRecognised;
      }
    return f;
  }

  /** A cohort's points as of an instant (movements dated before it). */
  static asOf(c: Cohort, end: Date): { N: bigint; R: bigint; X: bigint } {
    const f = { N: 0n, R: 0n, X: 0n };
    for (const m of c.moves)
      if (m.at < end.getTime()) {
        f.N += m.dN;
        f.R += m.dR;
        f.X += m.dX;
      }
    return f;
  }

  /**
   * The bounds of a close's estimate (docs/accounting.md, "Breakage estimate at close"), as of the
   * period's end: R/N <= u <= (R + outstanding)/N = (N − X)/N; null for a cohort with no points or
   * complete (every point redeemed or expired: nothing left to estimate).
   */
  static bounds(c: Cohort, end: Date): { lo: Fraction; hi: Fraction } | null {
    const f = ReferenceModel.asOf(c, end);
    if (f.N <= 0n || f.R + f.X >= f.N) return null;
    return { lo: new Fraction(f.R, f.N), hi: new Fraction(f.N - f.X, f.N) };
  }

  /** The cohorts a close of `period` re-estimates: those of its quarter and before. */
  closedCohorts(period: string): Cohort[] {
    return [...this.cohorts.values()].filter((c) => c.name.slice(0, 7) <= period);
  }

  /** The purchased cohorts an override is outside the bounds of (goodwill cohorts never veto it). */
  overrideOutOfBounds(period: string, end: Date, override: Fraction): string[] {
    const out: string[] = [];
    for (const c of this.closedCohorts(period)) {
      const b = ReferenceModel.bounds(c, end);
      if (!c.goodwill && b && (override.cmp(b.lo) < 0 || override.cmp(b.hi) > 0)) out.push(c.name);
    }
    return out;
  }

  /**
   * The close of `period`, approved: each cohort re-estimated takes its new u (with an override,
   * finance's figure, refused beforehand when outside a purchased cohort's bounds; without, the
   * close's own estimate, which the test reads and checks against the bounds here: the chain ladder
   * is not modelled) and is re-measured on what it holds now. The approved estimate then prices new
   * points (the override, or the close's estimate for new points; none: the one in force stays).
   */
  close(period: string, end: Date, estimates: Map<string, Fraction>, newPointsRate: Fraction | null, now: Date) {
    this.stamp(now);
    const changed: Array<[Cohort, Fraction]> = [];
    for (const c of this.closedCohorts(period)) {
      const u = estimates.get(c.name);
      if (u) changed.push([c, u]);
    }
    // the catch-up of the change of estimate as of the period's end (booked at its last instant):
    // recognised to date on the figures of then, at the new estimate, less what was recognised by then
    for (const [c, u] of changed) {
      const pts = ReferenceModel.asOf(c, end);
      const money = ReferenceModel.moneyAsOf(c, end);
      const then: Cohort = { ...c, ...pts, A: money.A, posted: money.posted, u };
      c.recognised += ReferenceModel.recognisedToDate(then) - money.recognised;
    }
    this.stamp(end.getTime() - 1);
    // then what happened after the period, at the new estimate (booked now)
    for (const [c, u] of changed) {
      c.u = u;
      this.remeasure(c);
    }
    this.stamp(now);
    if (newPointsRate) this.newPointsRate = newPointsRate;
  }
}
