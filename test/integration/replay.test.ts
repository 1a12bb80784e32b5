import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'vitest';
import { Worker } from '@temporalio/worker';

// Recorded histories of real runs (test/histories/*.json) must replay against the current
// workflow code: a change that breaks determinism for running workflows fails here, and must be
// guarded with patched(). Record new ones with LOYALTY_RECORD_HISTORIES=1 npm test.
const dir = join(__dirname, '..', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

test('there are recorded histories to replay', () => {
  assert.ok(files.length > 0);
});

for (const file of files) {
  test(`replays ${file}`, async () => {
    const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    await Worker.runReplayHistory(
      { workflowBundle: { code: readFileSync(process.env.LOYALTY_TEST_WORKFLOW_BUNDLE!, 'utf8') } },
      history,
      file.replace(/\.json$/, ''),
    );
  });
}
