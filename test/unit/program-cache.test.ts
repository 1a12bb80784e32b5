import assert from 'node:assert/strict';
import { test } from 'vitest';
import { BoundedLru, PROGRAM_CACHE_MAX_ENTRIES, ProgramCache } from '../../api/program-cache';
import { createPool } from '../../db/pool';

// The program cache is bounded (issue 14, item 8): ids come from callers, and an unknown one is
// cached too, so without a bound a caller could grow it with every id it makes up.
test('the LRU never holds more than its bound and forgets the least recently used first', () => {
  const lru = new BoundedLru<string, number>(3);
  for (let i = 0; i < 1_000; i++) {
    lru.set(`p-${i}`, i);
    assert.ok(lru.size <= 3, `size ${lru.size} after ${i + 1} inserts`);
  }
  assert.deepEqual([lru.get('p-997'), lru.get('p-998'), lru.get('p-999')], [997, 998, 999]);
  assert.equal(lru.get('p-0'), undefined);
  // a read makes an entry the most recent: the next insert drops another
  lru.get('p-997');
  lru.set('p-new', 1);
  assert.equal(lru.has('p-997'), true);
  assert.equal(lru.has('p-998'), false);
  // setting an existing key does not grow it
  lru.set('p-new', 2);
  assert.equal(lru.size, 3);
  assert.throws(() => new BoundedLru(0));
});

test('the program cache is bounded by default', () => {
  assert.ok(PROGRAM_CACHE_MAX_ENTRIES > 0 && PROGRAM_CACHE_MAX_ENTRIES <= 10_000);
  const pool = createPool({
    connectionString: 'postgres://u:p@127.0.0.1:1/none',
    maxConnections: 1,
    applicationName: 't',
  });
  const cache = new ProgramCache(pool, 2);
  assert.equal(cache.size, 0);
  return pool.end();
});
