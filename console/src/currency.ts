import { useEffect, useState } from 'preact/hooks';
import { api } from './api';

/** Programs' currencies, asked once per program for the tab's life (a program's currency never changes). */
const currencies = new Map<string, Promise<string | null>>();

/** The program's currency (GET /v1/programs/{programId}), null until it is known or when it cannot be read. */
export function useCurrency(programId: string): string | null {
  const [currency, setCurrency] = useState<string | null>(null);
  useEffect(() => {
    if (!programId) return;
    let p = currencies.get(programId);
    if (!p) {
      p = api
        .GET('/v1/programs/{programId}', { params: { path: { programId } } })
        .then((r) => r.data?.currency ?? null);
      currencies.set(programId, p);
      // a refusal or an outage is not remembered: the next page asks again
      void p.then((c) => c === null && currencies.delete(programId));
    }
    void p.then(setCurrency);
  }, [programId]);
  return currency;
}

/** Forgets them (sign-out): the next key reads what it may read. */
export const forgetCurrencies = () => currencies.clear();
