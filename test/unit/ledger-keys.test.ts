import assert from 'node:assert/strict';
import { test } from 'vitest';
import { chargebackClawbackKey } from '../../domain/ledger-keys';

test("a chargeback's claw-back key names one (invoice, chargeback) pair: colons cannot make two share it", () => {
  assert.notEqual(chargebackClawbackKey('a:b', 'c'), chargebackClawbackKey('a', 'b:c'));
  // colon-free ids keep the key written before the encoding (claw-backs already recorded replay)
  assert.equal(chargebackClawbackKey('inv-1', 'cb-1'), 'chargeback:inv-1:cb-1');
  const pairs: Array<[string, string]> = [
    ['a', 'b'],
    ['a:b', 'c'],
    ['a', 'b:c'],
    ['a:', 'b'],
    ['a', ':b'],
    ['1:a', 'b'],
    ['1', 'a:b'],
  ];
  const keys = pairs.map(([i, c]) => chargebackClawbackKey(i, c));
  assert.equal(new Set(keys).size, keys.length, keys.join(' | '));
});
