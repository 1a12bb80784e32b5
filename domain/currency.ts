/** ISO 4217 currencies as the runtime's ICU knows them, with their minor-unit digits. */
const KNOWN = new Set(Intl.supportedValuesOf('currency'));
/** The same list, sorted: the enum of a currency in /openapi.json. */
export const KNOWN_CURRENCIES: string[] = [...KNOWN].sort();

export function isKnownCurrency(code: string): boolean {
  return KNOWN.has(code);
}

export function currencyDigits(code: string): number {
  return (
    new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2
  );
}
