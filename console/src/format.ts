// Numbers in the user's locale; money from integer minor units, never through floating-point sums.
const locale = () => navigator.language || 'en-US';

export const formatPoints = (n: number) => new Intl.NumberFormat(locale()).format(n);

export function formatMoney(minor: number | string, currency: string): string {
  const digits =
    new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  const value = BigInt(minor);
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const scale = 10n ** BigInt(digits);
  // the exact decimal string, formatted by Intl as a string (no float rounding of large amounts)
  const decimal = `${neg ? '-' : ''}${abs / scale}${digits > 0 ? '.' + (abs % scale).toString().padStart(digits, '0') : ''}`;
  return new Intl.NumberFormat(locale(), { style: 'currency', currency }).format(decimal as unknown as number);
}

export const formatTime = (iso: string | null | undefined) =>
  iso ? new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso)) : '—';
