import type { Headers } from '@temporalio/common';
import type { WorkflowInterceptors } from '@temporalio/workflow';
import { CORRELATION_TEMPORAL_HEADER } from '../domain/correlation';

/**
 * Workflow interceptors (bundled with the workflows): the correlation header a workflow was
 * started with goes on every activity, local activity and child workflow it schedules, so the
 * request's id reaches the activities' logs and the services they call. Module state is per
 * workflow run: each run has its own context.
 */
let inherited: Headers[string] | undefined;

const withHeader = <T extends { headers: Headers }>(input: T): T =>
  inherited && !input.headers[CORRELATION_TEMPORAL_HEADER]
    ? { ...input, headers: { ...input.headers, [CORRELATION_TEMPORAL_HEADER]: inherited } }
    : input;

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [
    {
      execute: (input, next) => {
        inherited = input.headers[CORRELATION_TEMPORAL_HEADER];
        return next(input);
      },
    },
  ],
  outbound: [
    {
      scheduleActivity: (input, next) => next(withHeader(input)),
      scheduleLocalActivity: (input, next) => next(withHeader(input)),
      startChildWorkflowExecution: (input, next) => next(withHeader(input)),
      continueAsNew: (input, next) => next(withHeader(input)),
    },
  ],
});
