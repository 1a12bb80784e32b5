import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Context } from '@temporalio/activity';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { defaultPayloadConverter, type Headers } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import type { Logger } from 'pino';
import { CORRELATION_ID_PATTERN, CORRELATION_TEMPORAL_HEADER } from '../domain/correlation';

/** The correlation id of the request or activity this code runs for (AsyncLocalStorage). */
export const correlation = new AsyncLocalStorage<{ correlationId: string }>();
export const currentCorrelationId = (): string | undefined => correlation.getStore()?.correlationId;

/** The caller's id when it is well formed, else a fresh one. */
export const correlationIdFrom = (given: unknown): string =>
  typeof given === 'string' && CORRELATION_ID_PATTERN.test(given) ? given : randomUUID();

const header = (headers: Headers): Headers => {
  const id = currentCorrelationId();
  return id && !headers[CORRELATION_TEMPORAL_HEADER]
    ? { ...headers, [CORRELATION_TEMPORAL_HEADER]: defaultPayloadConverter.toPayload(id) }
    : headers;
};

/** Client side: a workflow started, signalled or updated within a request carries its id. */
export const correlationClientInterceptor: WorkflowClientInterceptor = {
  start: (input, next) => next({ ...input, headers: header(input.headers) }),
  signalWithStart: (input, next) => next({ ...input, headers: header(input.headers) }),
  signal: (input, next) => next({ ...input, headers: header(input.headers) }),
  startUpdate: (input, next) => next({ ...input, headers: header(input.headers) }),
  startUpdateWithStart: (input, next) =>
    next({
      ...input,
      workflowStartHeaders: header(input.workflowStartHeaders),
      updateHeaders: header(input.updateHeaders),
    }),
};

/**
 * Worker side: each activity runs with its workflow's correlation id (for the service calls'
 * header) and logs one line when it ends: activity, workflow, attempt, outcome, duration.
 */
export function correlationActivityInterceptor(log: Logger) {
  return (ctx: Context): ActivityInterceptors => ({
    inbound: {
      execute: async (input, next) => {
        const raw = input.headers[CORRELATION_TEMPORAL_HEADER];
        const correlationId = raw ? String(defaultPayloadConverter.fromPayload(raw)) : undefined;
        const info = ctx.info;
        const fields = {
          correlationId,
          activity: info.activityType,
          workflowId: info.workflowExecution?.workflowId,
          attempt: info.attempt,
        };
        const t0 = performance.now();
        try {
          const result = await (correlationId ? correlation.run({ correlationId }, () => next(input)) : next(input));
          log.info({ ...fields, outcome: 'completed', ms: Math.round(performance.now() - t0) }, 'activity');
          return result;
        } catch (e) {
          log.warn(
            { ...fields, outcome: 'failed', ms: Math.round(performance.now() - t0), err: (e as Error).message },
            'activity',
          );
          throw e;
        }
      },
    },
  });
}
