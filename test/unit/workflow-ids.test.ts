import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'vitest';
import {
  closeWorkflowId,
  invoiceAdjustmentWorkflowId,
  memberWorkflowId,
  reconciliationWorkflowId,
  redemptionWorkflowId,
} from '../../domain/workflow-ids';

// Ids are printable ASCII up to 128 characters (domain/schemas.ts), so `:` is allowed in member,
// invoice and adjustment ids; program ids are [a-z0-9_-]. A workflow id is the only thing that keeps
// two workflows apart: two different inputs must never give the same one.
const id = fc.stringMatching(/^[\x21-\x7e]{1,128}$/);
const colonHeavy = fc.stringMatching(/^[a:]{1,6}$/); // small alphabet: collisions would be found
const programId = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/);

test('invoice adjustments: (invoice a:b, adjustment c) and (a, b:c) are two workflows', () => {
  assert.notEqual(invoiceAdjustmentWorkflowId('acme', 'a:b', 'c'), invoiceAdjustmentWorkflowId('acme', 'a', 'b:c'));
});

test('invoice adjustments: different inputs never share a workflow id (property)', () => {
  for (const part of [id, colonHeavy]) {
    fc.assert(
      fc.property(programId, part, part, programId, part, part, (p1, i1, a1, p2, i2, a2) => {
        fc.pre(p1 !== p2 || i1 !== i2 || a1 !== a2);
        assert.notEqual(invoiceAdjustmentWorkflowId(p1, i1, a1), invoiceAdjustmentWorkflowId(p2, i2, a2));
      }),
      { numRuns: 5000 },
    );
  }
});

test('ids without a colon keep the form running workflows and recorded histories were started with', () => {
  assert.equal(invoiceAdjustmentWorkflowId('acme', 'inv-9', 'adj-1'), 'invoice-adjustment:acme:inv-9:adj-1');
  fc.assert(
    fc.property(programId, id, id, (p, i, a) => {
      fc.pre(!i.includes(':') && !a.includes(':'));
      assert.equal(invoiceAdjustmentWorkflowId(p, i, a), `invoice-adjustment:${p}:${i}:${a}`);
    }),
  );
  assert.equal(memberWorkflowId('acme', 'm-1'), 'member:acme:m-1');
  assert.equal(redemptionWorkflowId('acme', 'inv-9'), 'redemption:acme:inv-9');
  assert.equal(reconciliationWorkflowId('acme', '2026-11-21'), 'reconciliation:acme:2026-11-21');
  assert.equal(closeWorkflowId('acme', '2026-Q3'), 'close:acme:2026-Q3');
});

test('the ids with one free part after the program cannot collide, colons or not (property)', () => {
  for (const make of [memberWorkflowId, redemptionWorkflowId]) {
    fc.assert(
      fc.property(programId, colonHeavy, programId, colonHeavy, (p1, x1, p2, x2) => {
        fc.pre(p1 !== p2 || x1 !== x2);
        assert.notEqual(make(p1, x1), make(p2, x2));
      }),
    );
  }
});
