import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'vitest';
import {
  csvHeader,
  csvLine,
  EXPORT_FORMATS,
  formatter,
  jsonLineWriter,
  LEDGER_ENTRY_COLUMNS,
  type Column,
} from '../../domain/export-format';
import { negotiate } from '../../domain/media-type';

// The exports' lines (docs/api.md, "Export") and the Accept negotiation that picks them.
const COLS: Column[] = [
  { name: 'id', kind: 'id' },
  { name: 'n', kind: 'int', nullable: true },
  { name: 's', kind: 'text', nullable: true },
];

test('NDJSON: one object a line; ints as their exact digits, ids and text as strings, null as null', () => {
  const line = jsonLineWriter(COLS);
  assert.equal(line(['12', '9007199254740993', 'a"b\nc']), '{"id":"12","n":9007199254740993,"s":"a\\"b\\nc"}\n');
  assert.equal(line(['1', null, null]), '{"id":"1","n":null,"s":null}\n');
  assert.deepEqual(JSON.parse(line(['7', '-42', 'x'])), { id: '7', n: -42, s: 'x' });
});

test('CSV: a header, CRLF records, RFC 4180 quoting, null empty, formula text neutralised, signed numbers kept', () => {
  assert.equal(csvHeader(COLS), 'id,n,s\r\n');
  assert.equal(csvLine(['1', '-5', 'plain']), '1,-5,plain\r\n');
  assert.equal(csvLine(['1', null, 'a,b']), '1,,"a,b"\r\n');
  assert.equal(csvLine(['1', '2', 'say "hi"\r\nbye']), '1,2,"say ""hi""\r\nbye"\r\n');
  assert.equal(csvLine(['1', '2', '=HYPERLINK("x")']), `1,2,"'=HYPERLINK(""x"")"\r\n`);
  assert.equal(formatter('text/csv', LEDGER_ENTRY_COLUMNS).head.split(',')[0], 'entryId');
  assert.equal(formatter('application/x-ndjson', LEDGER_ENTRY_COLUMNS).head, '');
});

test('any text survives an NDJSON line (property)', () => {
  const line = jsonLineWriter(COLS);
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (s, n) => {
      const text = line(['1', String(n), s]);
      assert.equal(text.indexOf('\n'), text.length - 1, 'one line');
      assert.equal(JSON.parse(text).s, s);
      assert.ok(text.includes(`"n":${n},`));
    }),
    { numRuns: 500 },
  );
});

test('Accept: the first offered type when absent, empty or */*; the most specific range gives the weight; none acceptable is null', () => {
  const [ND, CSV] = EXPORT_FORMATS;
  const n = (h: string | undefined) => negotiate(h, EXPORT_FORMATS);
  assert.equal(n(undefined), ND);
  assert.equal(n(''), ND);
  assert.equal(n('*/*'), ND);
  assert.equal(n('text/csv'), CSV);
  assert.equal(n('TEXT/CSV; charset=utf-8'), CSV);
  assert.equal(n('text/*'), CSV);
  assert.equal(n('application/*'), ND);
  assert.equal(n('text/csv;q=0.9, application/x-ndjson;q=0.8'), CSV);
  assert.equal(n('text/csv;q=0.5, */*;q=0.9'), ND);
  assert.equal(n('*/*, application/x-ndjson;q=0'), CSV);
  assert.equal(n('text/csv, application/x-ndjson'), ND, 'a tie: the server’s order');
  assert.equal(n('application/json'), null);
  assert.equal(n('text/csv;q=0'), null);
  assert.equal(n('garbage'), null);
  assert.equal(n(`text/csv, ${'x/y, '.repeat(1000)}`), null, 'an over-long header is refused whole');
});
