import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { closeWorkflowId } from '../../domain/workflow-ids';
import {
  httpClient,
  programBody,
  startApi,
  startCloseStack,
  uniqueId,
  type CloseStack,
  type TestApi,
} from '../helpers/stack';

// What was just started is there to read (docs/close.md): between POST .../closes answering 202 and
// the workflow's first step (the freeze, which writes the close), GET .../closes/{period} answers
// `starting` and the report 409 close_starting, never 404. The gap is held open on purpose: this
// API starts closes on a task queue no worker polls.
let stack: CloseStack;
let idle: TestApi;

beforeAll(async () => {
  stack = await startCloseStack(23);
  idle = await startApi(stack.pool, async () => true, {
    client: stack.worker.client,
    taskQueue: uniqueId('no-worker'),
  });
}, 120_000);
afterAll(async () => {
  await idle?.close();
  await stack?.stop();
});

test('a close started but not yet frozen reads as starting; its report says to retry; an unknown close is still 404', async () => {
  const call = httpClient(idle);
  const programId = uniqueId('starting');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
  const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: '2026-08-14T10:00:00Z' },
  });
  assert.equal(earned.status, 201, JSON.stringify(earned.body));
  const started = await call('POST', `/v1/programs/${programId}/closes`, {
    role: 'finance',
    body: { period: '2026-Q3' },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  try {
    const read = await call('GET', `/v1/programs/${programId}/closes/2026-Q3`, { role: 'finance' });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.deepEqual(
      [read.body.status, read.body.step, read.body.workflowId],
      ['starting', 'starting', closeWorkflowId(programId, '2026-Q3')],
    );
    const report = await call('GET', `/v1/programs/${programId}/closes/2026-Q3/report`, { role: 'finance' });
    assert.deepEqual([report.status, report.body.error.code], [409, 'close_starting']);
    const none = await call('GET', `/v1/programs/${programId}/closes/2026-Q2`, { role: 'finance' });
    assert.equal(none.status, 404);
  } finally {
    await stack.worker.client.workflow.getHandle(closeWorkflowId(programId, '2026-Q3')).terminate('test over');
  }
  const gone = await call('GET', `/v1/programs/${programId}/closes/2026-Q3`, { role: 'finance' });
  assert.equal(gone.status, 404);
});
