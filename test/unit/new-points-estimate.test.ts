import assert from 'node:assert/strict';
import { describe, test } from 'vitest';
import { newPointsEstimate } from '../../domain/new-points-estimate';

const cohort = (c: string, rate: string, method: string) => ({ cohort: c, rate, method });

describe('the estimate that prices new points (issue 13, defect 6)', () => {
  test("an override is finance's program-wide estimate: it prices new points as approved", () => {
    assert.deepEqual(
      newPointsEstimate({
        cohorts: [cohort('2026-Q1', '0.850000', 'override'), cohort('2026-Q2', '0.900000', 'override')],
        override: { rate: 0.9, justification: 'survey' },
      }),
      { rate: '0.900000', source: 'override', cohort: null },
    );
  });

  test("otherwise the chain ladder's estimate of the newest cohort it projected", () => {
    assert.deepEqual(
      newPointsEstimate({
        cohorts: [
          cohort('2025-Q4', '0.700000', 'chain_ladder'),
          cohort('2026-Q1', '0.750000', 'chain_ladder'),
          cohort('2026-Q2', '0.800000', 'prior'),
        ],
        override: null,
      }),
      { rate: '0.750000', source: 'chain_ladder', cohort: '2026-Q1' },
    );
  });

  test('a close whose cohorts only kept their prior sets no estimate (the one in force stays)', () => {
    assert.equal(newPointsEstimate({ cohorts: [cohort('2026-Q1', '0.400000', 'prior')], override: null }), null);
    assert.equal(newPointsEstimate({ cohorts: [], override: null }), null);
  });
});
