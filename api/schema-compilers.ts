import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../domain/errors';
import { zodIssues } from './validate';

/** What a failure says the part was, as parse() said before (api/validate.ts). */
const WHERE: Record<string, string> = {
  params: 'path',
  querystring: 'query',
  body: 'body',
  headers: 'Idempotency-Key header',
};

/**
 * Validates a request's part with the route's zod schema (api/route.ts): the parsed value replaces
 * it (coerced numbers in a query, defaults); a failure is 400 validation_failed listing every
 * problem, in the API's envelope (the error handler answers ApiError as it is). An absent body is
 * `{}`, as parse() took it: a POST without one lists the missing fields.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data: unknown) => {
    // (absent only: a body of JSON `null` is a body, and not an object)
    const r = schema.safeParse(httpPart === 'body' && data === undefined ? {} : data);
    if (r.success) return { value: r.data };
    // the one header a route validates: as api/validate.ts idempotencyKey() said it
    if (httpPart === 'headers' && (data as Record<string, unknown> | null)?.['idempotency-key'] === undefined)
      return {
        error: new ApiError(400, 'validation_failed', 'the Idempotency-Key header is required on this request'),
      };
    const where = WHERE[httpPart ?? ''] ?? httpPart ?? 'request';
    return {
      error: new ApiError(400, 'validation_failed', `invalid ${where}`, {
        issues: zodIssues(r.error),
      }),
    };
  };

/**
 * Serializes an answer as JSON. With `check` (the tests' APIs, test/helpers/stack.ts), the answer is
 * first checked against the status's documented schema, and one that does not match is a 500
 * `response_not_documented`: the spec and the server cannot drift apart unnoticed. Without it (a
 * production API), the answer goes out as it is: a documentation slip never costs a client its answer.
 */
export function zodSerializerCompiler(check: boolean): FastifySerializerCompiler<z.ZodType | { schema: z.ZodType }> {
  return ({ schema, method, url, httpStatus }) => {
    const zod = (schema as { safeParse?: unknown }).safeParse
      ? (schema as z.ZodType)
      : (schema as { schema: z.ZodType }).schema;
    return (data: unknown) => {
      if (check && zod?.safeParse) {
        const r = zod.safeParse(data);
        if (!r.success)
          throw new ApiError(
            500,
            'response_not_documented',
            `${method} ${url} ${httpStatus}: the answer is not its documented schema`,
            {
              issues: zodIssues(r.error),
            },
          );
      }
      return JSON.stringify(data);
    };
  };
}
