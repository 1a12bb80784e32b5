/** Accounting periods are calendar quarters in UTC, written `2026-Q4`. */
export type Period = `${number}-Q${1 | 2 | 3 | 4}`;

export const PERIOD_PATTERN = /^(\d{4})-Q([1-4])$/;

export function quarterOf(at: Date): Period {
  return `${at.getUTCFullYear()}-Q${(Math.floor(at.getUTCMonth() / 3) + 1) as 1 | 2 | 3 | 4}`;
}

/** [start, end) of a quarter. */
export function quarterBounds(period: string): { start: Date; end: Date } {
  const m = PERIOD_PATTERN.exec(period);
  if (!m) throw new RangeError(`not a period: ${period}`);
  const year = Number(m[1]);
  const q = Number(m[2]);
  return {
    start: new Date(Date.UTC(year, (q - 1) * 3, 1)),
    end: new Date(Date.UTC(year, q * 3, 1)),
  };
}

/** The quarter after `period`. */
export function nextPeriod(period: string): Period {
  return quarterOf(quarterBounds(period).end);
}

/** The quarter before `period`. */
export function previousPeriod(period: string): Period {
  return quarterOf(new Date(quarterBounds(period).start.getTime() - 1));
}

/** The quarter a cohort was issued in: its name, less a goodwill cohort's suffix (`2026-Q4-goodwill`). */
export function cohortQuarter(cohort: string): Period {
  const quarter = cohort.slice(0, 7);
  quarterBounds(quarter);
  return quarter as Period;
}
