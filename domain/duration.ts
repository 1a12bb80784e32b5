/**
 * ISO 8601 durations (`P365D`, `PT10S`, `P1Y2M`): one meaning everywhere, PostgreSQL's
 * `timestamptz + interval` in UTC. Years and months are calendar months (12 a year; the day of the
 * month is kept, or clamped to the month's last day: Jan 31 + P1M = Feb 28, or 29), then weeks and
 * days are whole days (24 h in UTC), then the time part. The database computes the member's
 * expiry deadline that way; the workflows' timers (approval windows, the chargeback window, notice
 * periods) use `addDuration`, which does the same, and test/integration/duration-sql.test.ts
 * compares the two on random instants and durations.
 */
const DURATION =
  /^P(?!$)(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$/;

export const MIN_WINDOW_MS = 1_000;
export const MAX_WINDOW_MS = 100 * 366 * 24 * 3600 * 1000;

const DAY_MS = 86_400_000;

interface DurationParts {
  months: number;
  days: number;
  timeMs: number;
}

/** The duration as PostgreSQL's interval holds it: months, days, and a time part; null if not ISO 8601. */
export function parseDuration(duration: string): DurationParts | null {
  const m = DURATION.exec(duration);
  if (!m) return null;
  const n = (i: number) => Number(m[i] ?? 0);
  return { months: n(1) * 12 + n(2), days: n(3) * 7 + n(4), timeMs: ((n(5) * 60 + n(6)) * 60 + n(7)) * 1000 };
}

/** The instant `duration` after `fromMs`, with calendar months in UTC (PostgreSQL: `from + interval` with timezone UTC). */
export function addDuration(fromMs: number, duration: string): number {
  const d = parseDuration(duration);
  if (!d) throw new RangeError(`not an ISO 8601 duration: ${JSON.stringify(duration)}`);
  return addParts(fromMs, d);
}

function addParts(fromMs: number, d: DurationParts): number {
  let t = fromMs;
  if (d.months) {
    const from = new Date(fromMs);
    const monthIndex = from.getUTCFullYear() * 12 + from.getUTCMonth() + d.months;
    const year = Math.floor(monthIndex / 12);
    const month = monthIndex - year * 12;
    const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    const msOfDay = fromMs - Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
    const day = Math.min(from.getUTCDate(), lastDay);
    // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear does not.
    const at = new Date(Date.UTC(2000, month, day));
    at.setUTCFullYear(year);
    t = at.getTime() + msOfDay;
  }
  return t + d.days * DAY_MS + d.timeMs;
}

/** How long from `fromMs` until `duration` after it, in ms (for a workflow's timer or condition). */
export function durationMsFrom(fromMs: number, duration: string): number {
  return addDuration(fromMs, duration) - fromMs;
}

/**
 * Nominal length in ms (a month as 30 days, a year as 365), for the bounds a window must lie in
 * (validation only; what a duration means is `addDuration`).
 */
export function nominalMs(duration: string): number | null {
  const m = DURATION.exec(duration);
  if (!m) return null;
  const n = (i: number) => Number(m[i] ?? 0);
  const days = n(1) * 365 + n(2) * 30 + n(3) * 7 + n(4);
  return ((days * 24 + n(5)) * 60 + n(6)) * 60_000 + n(7) * 1000;
}

export function isValidWindow(duration: string): boolean {
  const ms = nominalMs(duration);
  return ms !== null && ms >= MIN_WINDOW_MS && ms <= MAX_WINDOW_MS;
}

// The Gregorian calendar repeats every 400 years (146,097 days): every start day of one cycle
// covers every month length, leap day and skipped century leap day a window can cross. Windows are
// at most 100 years (MAX_WINDOW_MS), so a cycle from 2000-03-01 sees 2100, 2200 and 2300 skipped.
const CYCLE_START_MS = Date.UTC(2000, 2, 1);
const CYCLE_DAYS = 146_097;

/**
 * Whether a window of `a` can end before a window of `b` started at the same instant: for some
 * start day of a 400-year cycle. P1M and P30D each end first on some start, so each can be shorter
 * than the other; P1M never ends before P28D; P4Y ends before P1461D across 2100, a skipped leap day.
 */
export function canEndBefore(a: string, b: string): boolean {
  const pa = parseDuration(a);
  const pb = parseDuration(b);
  if (!pa || !pb) throw new RangeError(`not ISO 8601 durations: ${JSON.stringify(a)}, ${JSON.stringify(b)}`);
  // without months both are fixed lengths in UTC
  if (pa.months === 0 && pb.months === 0) return pa.days * DAY_MS + pa.timeMs < pb.days * DAY_MS + pb.timeMs;
  for (let day = 0; day < CYCLE_DAYS; day++) {
    const start = CYCLE_START_MS + day * DAY_MS;
    if (addParts(start, pa) < addParts(start, pb)) return true;
  }
  return false;
}
