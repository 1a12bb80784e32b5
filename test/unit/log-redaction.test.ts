import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'vitest';
import { LOG_REDACT } from '../../domain/log-redaction';

// The API, the worker (workers/main.ts) and the CLI's loggers share LOG_REDACT: a key, a cookie,
// a token or a password in what they log is written as [redacted].
test('what the loggers write carries no key, cookie, token or password', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = pino({ redact: LOG_REDACT }, sink);
  log.error(
    {
      req: { headers: { authorization: 'Bearer ll_live_secret1', cookie: 'loyalty_codec_key=ll_2' } },
      err: { password: 'pw-3', token: 'tk-4' },
      secret: 'whsec_5',
    },
    'a failed call',
  );
  const out = lines.join('');
  for (const leaked of ['ll_live_secret1', 'll_2', 'pw-3', 'tk-4', 'whsec_5']) assert.ok(!out.includes(leaked), out);
  assert.match(out, /\[redacted\]/);
  assert.match(out, /a failed call/);
});
