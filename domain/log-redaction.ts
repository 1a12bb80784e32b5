/**
 * Where secrets can sit in what the API, the worker and the dev stack log: request headers (API
 * keys, the codec cookie, a metrics token), and fields named for a secret or a password. pino
 * replaces them with "[redacted]" before the line is written. (Keys are never in URLs, which
 * Fastify's request serializer logs: api/routes/codec.ts; the worker's logger, workers/main.ts, uses the same paths.)
 */
export const LOG_REDACT = {
  paths: [
    'req.headers.authorization',
    'req.headers.cookie',
    'req.headers["x-api-key"]',
    'headers.authorization',
    'headers.cookie',
    'authorization',
    'cookie',
    'secret',
    'password',
    'token',
    '*.secret',
    '*.password',
    '*.token',
    '*.authorization',
    'res.headers["set-cookie"]',
  ],
  censor: '[redacted]',
};
