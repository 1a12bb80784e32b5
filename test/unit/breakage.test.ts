import assert from 'node:assert/strict';
import { describe, test } from 'vitest';
import fc from 'fast-check';
import {
  chainLadderFactors,
  DEFAULT_ESTIMATION_LIMITS,
  projectUltimateRates,
  type CohortDevelopment,
} from '../../domain/breakage';
import { RATE_SCALE } from '../../domain/money';

const row = (cohort: string, n: bigint, cum: bigint[], prior = 800_000n): CohortDevelopment => ({
  cohort,
  pointsIssued: n,
  cumulativeRedeemed: cum,
  priorRate: prior,
});
const triangle = [
  row('2026-Q1', 1000n, [100n, 300n, 400n]),
  row('2026-Q2', 1000n, [200n, 500n]),
  row('2026-Q3', 2000n, [300n]),
];

describe('chain ladder: examples', () => {
  test('volume-weighted factors, and which are backed by enough cohorts', () => {
    const f = chainLadderFactors(triangle);
    assert.deepEqual(
      f.map((x) => [x.age, x.numerator, x.denominator, x.cohorts, x.sufficient]),
      [
        [0, 800n, 300n, 2, true],
        [1, 400n, 300n, 1, false],
      ],
    );
  });

  test('a cohort needing a thin factor keeps its prior estimate, and says why', () => {
    const { estimates } = projectUltimateRates(triangle, null);
    assert.deepEqual(
      estimates.map((e) => [e.cohort, e.rate, e.method]),
      [
        ['2026-Q1', 400_000n, 'chain_ladder'],
        ['2026-Q2', 800_000n, 'prior'],
        ['2026-Q3', 800_000n, 'prior'],
      ],
    );
    assert.match(estimates[1]!.reason!, /from age 1 to 2 \(1 cohort/);
  });

  test('with one cohort enough per factor: 500 x 4/3 of 1,000 and 300 x 8/3 x 4/3 of 2,000', () => {
    const { estimates } = projectUltimateRates(triangle, null, {
      ...DEFAULT_ESTIMATION_LIMITS,
      minCohortsPerFactor: 1,
    });
    assert.deepEqual(
      estimates.map((e) => e.rate),
      [400_000n, 666_667n, 533_333n],
    );
    assert.deepEqual(
      estimates.map((e) => e.projectedRedeemed),
      [400n, 666n, 1066n],
    );
  });

  test('an override applies to every cohort; no redemptions or no points keep the prior', () => {
    assert.ok(
      projectUltimateRates(triangle, 970_000n).estimates.every((e) => e.rate === 970_000n && e.method === 'override'),
    );
    const thin = projectUltimateRates([row('a', 0n, [0n]), row('b', 100n, [0n]), row('c', 100n, [])], null).estimates;
    assert.deepEqual(
      thin.map((e) => e.reason),
      ['no points outstanding', 'too few redemptions to project', 'no development observed yet'],
    );
  });

  test('the rate stays in [minimum, 1] even when the projection exceeds the points issued', () => {
    const { estimates } = projectUltimateRates(
      [row('a', 100n, [90n, 100n]), row('b', 100n, [95n, 100n]), row('c', 100n, [99n])],
      null,
    );
    assert.equal(estimates[2]!.rate, RATE_SCALE);
  });
});

describe('chain ladder: properties', () => {
  // a cohort's cumulative redemptions never fall and never exceed what it issued
  const cohortArb = fc
    .record({
      n: fc.bigInt({ min: 1n, max: 10n ** 9n }),
      steps: fc.array(fc.bigInt({ min: 0n, max: 1000n }), { minLength: 0, maxLength: 8 }),
      prior: fc.bigInt({ min: 10_000n, max: RATE_SCALE }),
    })
    .map(({ n, steps, prior }) => {
      let cum = 0n;
      const cumulative = steps.map((s) => (cum = cum + ((n - cum) * s) / 1000n));
      return { n, cumulative, prior };
    });

  test('every estimate is within [minRate, 1]; a chain-ladder one is at least what was redeemed to date', () => {
    fc.assert(
      fc.property(fc.array(cohortArb, { minLength: 1, maxLength: 10 }), (cohorts) => {
        const rows = cohorts.map((c, i) => row(`c${i}`, c.n, c.cumulative, c.prior));
        for (const e of projectUltimateRates(rows, null).estimates) {
          const r = rows.find((x) => x.cohort === e.cohort)!;
          assert.ok(e.rate >= DEFAULT_ESTIMATION_LIMITS.minRate && e.rate <= RATE_SCALE);
          if (e.method === 'prior') assert.equal(e.rate, r.priorRate);
          if (e.method === 'chain_ladder')
            assert.ok(e.rate >= (e.redeemedToDate * RATE_SCALE) / r.pointsIssued || e.rate === RATE_SCALE);
        }
      }),
    );
  });
});
