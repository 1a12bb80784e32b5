import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'vitest';
import { csvCell } from '../../domain/close-report';

// The close report's CSV is opened in spreadsheets by finance. A cell whose text starts with
// = + - @ (or a tab or CR) is run as a formula by Excel, LibreOffice and Google Sheets (CSV
// injection): text that people typed (a cohort, a reason, a store id) must arrive as text.
const unquote = (cell: string) => (cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell);

test('text starting with a formula character is neutralised with a leading quote', () => {
  assert.equal(csvCell('=HYPERLINK("http://evil","x")'), `"'=HYPERLINK(""http://evil"",""x"")"`);
  assert.equal(csvCell('+1+cmd|/c calc'), "'+1+cmd|/c calc");
  assert.equal(csvCell('-2+3'), "'-2+3");
  assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvCell('\t=1'), "'\t=1");
});

test('numbers and plain signed numbers stay numbers; other text is unchanged', () => {
  assert.equal(csvCell(-10288), '-10288');
  assert.equal(csvCell('-102.88'), '-102.88');
  assert.equal(csvCell(0.8), '0.8');
  assert.equal(csvCell('2026-Q3'), '2026-Q3');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell(null), '');
});

test('no text cell, once read back, starts a formula unless it is a plain number (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii' }), (s) => {
      const back = unquote(csvCell(s));
      if (/^[+-]?\d+(\.\d+)?$/.test(s)) assert.equal(back, s);
      else {
        assert.doesNotMatch(back, /^[=+\-@\t\r]/);
        assert.equal(back, /^[=+\-@\t\r]/.test(s) ? `'${s}` : s, 'nothing else changes');
      }
    }),
    { numRuns: 2000 },
  );
});
