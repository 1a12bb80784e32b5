/**
 * One webhook attempt: a POST of the signed body, a 2xx within the timeout counts. The target's
 * addresses are checked after DNS (a name that resolves to a private address is refused as an
 * address literal is, unless allowPrivate), and at most maxBodyBytes of the answer are read.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isPrivateAddress, isPrivateHost, parseWebhookUrl } from '../domain/webhooks';

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  /** why it did not count (at most 200 characters of the answer, or the network error) */
  error: string | null;
  durationMs: number;
}

export interface DeliverOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  maxBodyBytes: number;
  /** connections kept alive between attempts (keepAliveAgents); without: one connection an attempt */
  agent?: { http: http.Agent; https: https.Agent };
}

/** Agents that keep a few connections to each receiver open between attempts (the relay's). */
export function keepAliveAgents(): { http: http.Agent; https: https.Agent } {
  const o = { keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 30_000 };
  return { http: new http.Agent(o), https: new https.Agent(o) };
}

export function postWebhook(
  rawUrl: string,
  body: string,
  headers: Record<string, string>,
  o: DeliverOptions,
): Promise<AttemptResult> {
  const started = Date.now();
  const done = (r: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({ ...r, durationMs: Date.now() - started });
  const url = parseWebhookUrl(rawUrl);
  if (!url) return Promise.resolve(done({ ok: false, statusCode: null, error: 'invalid URL' }));
  if (!o.allowPrivate && isPrivateHost(url.hostname))
    return Promise.resolve(done({ ok: false, statusCode: null, error: 'refused: a private or loopback address' }));
  // checked after resolution too: a public name may resolve to a private address
  const lookup = (hostname: string, opts: object, cb: (...a: unknown[]) => void) =>
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return cb(err);
      const allowed = o.allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (allowed.length === 0) return cb(new Error('refused: the name resolves to a private or loopback address'));
      if ((opts as { all?: boolean }).all) return cb(null, allowed);
      return cb(null, allowed[0]!.address, allowed[0]!.family);
    });
  return new Promise((resolve) => {
    let settled = false;
    let readToEnd = false;
    const finish = (r: Omit<AttemptResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // a settled answer read to its end leaves the socket to the agent; anything else is cut
      if (!r.ok || !readToEnd) req.destroy();
      resolve(done(r));
    };
    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        lookup: lookup as never,
        agent: o.agent ? (url.protocol === 'https:' ? o.agent.https : o.agent.http) : false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const status = res.statusCode ?? 0;
        const end = () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 200);
          const ok = status >= 200 && status < 300;
          finish({ ok, statusCode: status, error: ok ? null : `HTTP ${status}${text ? `: ${text}` : ''}` });
        };
        res.on('data', (c: Buffer) => {
          if (size < o.maxBodyBytes) chunks.push(c.subarray(0, o.maxBodyBytes - size));
          size += c.length;
          if (size >= o.maxBodyBytes) end(); // enough read: the rest is not ours to wait for
        });
        res.on('end', () => {
          readToEnd = true;
          end();
        });
        res.on('error', (e) => finish({ ok: false, statusCode: status, error: e.message.slice(0, 200) }));
      },
    );
    const timer = setTimeout(
      () => finish({ ok: false, statusCode: null, error: `no answer within ${o.timeoutMs} ms` }),
      o.timeoutMs,
    );
    req.on('error', (e) => finish({ ok: false, statusCode: null, error: e.message.slice(0, 200) }));
    req.end(body);
  });
}
