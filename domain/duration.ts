/**
 * ISO 8601 durations (`P365D`, `PT10S`, `P1Y2M`). PostgreSQL applies them to timestamps with
 * calendar semantics (`timestamptz + interval`), so the deadline is computed in one place, the
 * database; here we only validate and bound them.
 */
const DURATION = /^P(?!$)(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$/;

export const MIN_WINDOW_MS = 1_000;
export const MAX_WINDOW_MS = 100 * 366 * 24 * 3600 * 1000;

/** Nominal length in ms (a month as 30 days, a year as 365): for bounds and display only. */
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
