// Numbers, money and times in the user's locale. Money arrives in integer minor units and is shown
// from an exact decimal string (Intl formats a numeric string without going through a float), in
// the program's currency with the digits ICU gives it: the same digits the API uses
// (domain/currency.ts), so 1234 JPY is ¥1,234 and 1234 EUR is €12.34.
// the user's locale: the browser's (under node, in the unit tests: en-US)
const locale = () => (globalThis as { navigator?: { language?: string } }).navigator?.language || 'en-US';

export const formatPoints = (n: number) => new Intl.NumberFormat(locale()).format(n);

export const formatTime = (iso: string | null | undefined) =>
  iso ? new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso)) : '—';

export const formatDate = (isoDate: string) =>
  new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(`${isoDate}T00:00:00Z`));

/** `YYYY-MM` as the user's month name and year. */
export const formatMonth = (month: string) =>
  new Intl.DateTimeFormat(locale(), { month: 'short', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(`${month}-01T00:00:00Z`),
  );

const moneyFormats = new Map<string, Intl.NumberFormat>();
function moneyFormat(currency: string): Intl.NumberFormat {
  let f = moneyFormats.get(currency);
  if (!f) moneyFormats.set(currency, (f = new Intl.NumberFormat(locale(), { style: 'currency', currency })));
  return f;
}

/** Integer minor units as an exact decimal string with `digits` places: -1234, 2 -> "-12.34". */
export function minorToDecimal(minor: number, digits: number): `${number}` {
  if (!Number.isSafeInteger(minor)) throw new Error(`not an amount in minor units: ${minor}`);
  const abs = String(Math.abs(minor)).padStart(digits + 1, '0');
  const whole = digits ? `${abs.slice(0, -digits)}.${abs.slice(-digits)}` : abs;
  return `${minor < 0 ? '-' : ''}${whole}` as `${number}`;
}

export function formatMoney(minor: number | null | undefined, currency: string): string {
  if (minor === null || minor === undefined) return '—';
  const f = moneyFormat(currency);
  return f.format(minorToDecimal(minor, f.resolvedOptions().maximumFractionDigits ?? 2));
}

/** A rate (a number such as 0.8, or an exact decimal string such as "0.1234") as a percentage. */
export function formatRate(rate: number | string | null | undefined): string {
  if (rate === null || rate === undefined) return '—';
  const f = new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 2 });
  return f.format(typeof rate === 'string' ? (rate as `${number}`) : rate);
}

/** A decimal the user typed ("12.5", "12.50", "1250") as integer minor units, exactly; null when not one. */
export function decimalToMinor(text: string, digits: number): number | null {
  const m = /^\s*(\d+)(?:[.,](\d*))?\s*$/.exec(text);
  if (!m || (m[2] ?? '').length > digits) return null;
  const minor = Number(m[1]! + (m[2] ?? '').padEnd(digits, '0'));
  return Number.isSafeInteger(minor) ? minor : null;
}
