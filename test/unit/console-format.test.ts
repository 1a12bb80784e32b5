import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'vitest';
import { decimalToMinor, formatMoney, minorToDecimal } from '../../console/src/format';

// The console shows money from integer minor units through an exact decimal string, never a float
// (console/src/format.ts): every amount reads back to the same minor units, whatever its size.

test('minor units to an exact decimal and back, for every safe integer and 0 to 4 digits', () => {
  fc.assert(
    fc.property(fc.maxSafeInteger(), fc.integer({ min: 0, max: 4 }), (minor, digits) => {
      const text = minorToDecimal(minor, digits);
      assert.match(text, digits ? new RegExp(`^-?\\d+\\.\\d{${digits}}$`) : /^-?\d+$/);
      if (minor >= 0) assert.equal(decimalToMinor(text, digits), minor);
      else assert.equal(decimalToMinor(text.slice(1), digits), -minor);
    }),
  );
  assert.equal(minorToDecimal(-5, 2), '-0.05');
  assert.equal(minorToDecimal(1234, 0), '1234');
  assert.throws(() => minorToDecimal(0.5, 2));
});

test('what a user types: whole and decimal amounts, a comma for the point; more places than the currency has is refused', () => {
  assert.equal(decimalToMinor('12', 2), 1200);
  assert.equal(decimalToMinor('12.5', 2), 1250);
  assert.equal(decimalToMinor(' 0,01 ', 2), 1);
  assert.equal(decimalToMinor('12.345', 2), null);
  assert.equal(decimalToMinor('1.5', 0), null);
  assert.equal(decimalToMinor('-1', 2), null);
  assert.equal(decimalToMinor('1e3', 2), null);
  assert.equal(decimalToMinor('99999999999999999', 2), null);
});

test("amounts in the program's currency, past a float's exact range, in the currency's digits", () => {
  // the largest safe integer: divided by 100 as a float it would not be exact; as a string it is
  assert.equal(formatMoney(9_007_199_254_740_991, 'USD'), '$90,071,992,547,409.91');
  assert.equal(formatMoney(1234, 'JPY'), '¥1,234');
  assert.match(formatMoney(1234, 'KWD'), /^KWD\s1\.234$/);
  assert.equal(formatMoney(-1, 'EUR'), '-€0.01');
  assert.equal(formatMoney(null, 'EUR'), '—');
});
