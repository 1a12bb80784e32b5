import { test } from 'vitest';
import assert from 'node:assert/strict';
import { cohortQuarter, nextPeriod } from '../../domain/period';

// A goodwill cohort ('2026-Q4-goodwill', docs/adjustments.md) develops from its quarter, like the
// purchased cohort of that quarter: the close's triangle starts there.
test('cohortQuarter: a cohort name less its goodwill suffix; anything else is refused', () => {
  assert.equal(cohortQuarter('2026-Q4'), '2026-Q4');
  assert.equal(cohortQuarter('2026-Q4-goodwill'), '2026-Q4');
  assert.equal(nextPeriod(cohortQuarter('2026-Q4-goodwill')), '2027-Q1');
  assert.throws(() => cohortQuarter('2026-Q5-goodwill'), RangeError);
  assert.throws(() => cohortQuarter('goodwill'), RangeError);
});
