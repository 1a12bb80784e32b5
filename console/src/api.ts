import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from '../../api/client/openapi';

// The API key lives in this module's memory only: never in a URL, a cookie or web storage, so it is
// gone when the tab closes or the user signs out (issue 16). Every call goes through the typed
// client generated from /openapi.json (api/client/openapi.d.ts): a drift breaks the console's build.
let apiKey: string | null = null;

export const setKey = (key: string | null) => {
  apiKey = key;
};

const auth: Middleware = {
  onRequest({ request }) {
    if (apiKey !== null) request.headers.set('authorization', `Bearer ${apiKey}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use(auth);

export interface ApiFailure {
  code: string;
  message: string;
}

/** The API's error body `{error: {code, message}}`, or a generic one. */
export function failureOf(error: unknown, status: number): ApiFailure {
  const e = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    code: typeof e?.code === 'string' ? e.code : `http_${status}`,
    message: typeof e?.message === 'string' ? e.message : `the API answered ${status}`,
  };
}

/** A fresh Idempotency-Key for one user action (one click is one request: a second click is another). */
export const once = () => ({ 'idempotency-key': crypto.randomUUID() });
