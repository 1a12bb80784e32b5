/**
 * Exact arithmetic for money. Amounts are integers in minor units (bigint); ratios are exact
 * fractions. Nothing here touches floating point: rates arrive as decimals with at most
 * RATE_SCALE_DIGITS places and are turned into integers of millionths at the edge.
 */
export const RATE_SCALE_DIGITS = 6;
export const RATE_SCALE = 1_000_000n;

/** A rate in [0, 1] as an exact integer count of millionths. */
export type RateMillionths = bigint;

/**
 * Allocations are carried at fixed scale, in millionths of a minor unit ("micro"), and rounded
 * to the minor unit only when a journal entry is posted.
 */
export const MICRO_PER_MINOR = 1_000_000n;

export function rateToMillionths(rate: number): RateMillionths {
  const scaled = Math.round(rate * 1_000_000);
  if (!Number.isFinite(rate) || Math.abs(rate * 1_000_000 - scaled) > 1e-6) {
    throw new RangeError(`rate ${rate} has more than ${RATE_SCALE_DIGITS} decimal places`);
  }
  // a rate too small to be a millionth (5e-324) is not 0: within the tolerance above, yet not exact
  if (scaled === 0 && rate !== 0)
    throw new RangeError(`rate ${rate} has more than ${RATE_SCALE_DIGITS} decimal places`);
  if (scaled < 0 || scaled > 1_000_000) throw new RangeError(`rate ${rate} is outside [0, 1]`);
  return BigInt(scaled);
}

export function millionthsToRate(m: RateMillionths): number {
  return Number(m) / 1_000_000;
}

/** Millionths as the fixed-scale decimal PostgreSQL's numeric(7, 6) holds: 970000n -> "0.970000". */
export function millionthsToDecimal(m: RateMillionths): string {
  return `${m / RATE_SCALE}.${String(m % RATE_SCALE).padStart(RATE_SCALE_DIGITS, '0')}`;
}

/** A decimal string with at most 6 places (a numeric(7, 6) from the database) as millionths, exactly. */
export function decimalToMillionths(d: string): RateMillionths {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(d);
  if (!m) throw new RangeError(`not a decimal with at most ${RATE_SCALE_DIGITS} places: ${d}`);
  return BigInt(m[1]!) * RATE_SCALE + BigInt((m[2] ?? '').padEnd(RATE_SCALE_DIGITS, '0'));
}

/** True when a JSON number is a rate we can hold exactly. */
export function isExactRate(rate: number): boolean {
  try {
    rateToMillionths(rate);
    return true;
  } catch {
    return false;
  }
}

/**
 * num / den rounded to the nearest integer, halves away from zero: the same rule as
 * PostgreSQL's round(numeric), so SQL and TypeScript produce the same minor unit.
 */
export function divRound(num: bigint, den: bigint): bigint {
  if (den === 0n) throw new RangeError('division by zero');
  if (den < 0n) return divRound(-num, -den);
  const negative = num < 0n;
  const abs = negative ? -num : num;
  const q = (abs * 2n + den) / (den * 2n);
  return negative ? -q : q;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
