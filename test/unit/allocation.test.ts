import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  allocateRelativeSsp,
  allocateRelativeSspMicro,
  pointsEarned,
  provisionIncrementalCost,
} from '../../domain/allocation';
import {
  decimalToMillionths,
  divRound,
  isExactRate,
  millionthsToDecimal,
  millionthsToRate,
  RATE_SCALE,
  rateToMillionths,
} from '../../domain/money';
import { recognizedToDate } from '../../domain/recognition';

const K = RATE_SCALE;

/** floor(num / den) for bigints of any sign (bigint `/` truncates toward zero). */
function floorDiv(num: bigint, den: bigint): bigint {
  const q = num / den;
  return num % den !== 0n && num < 0n !== den < 0n ? q - 1n : q;
}

/** Reference: num / den rounded to the nearest integer, exact halves away from zero. */
function roundHalfAwayRef(num: bigint, den: bigint): bigint {
  if (den < 0n) return roundHalfAwayRef(-num, -den);
  const q = floorDiv(num, den);
  const r = num - q * den; // 0 <= r < den; the exact value is q + r/den
  if (2n * r > den) return q + 1n;
  if (2n * r < den) return q;
  return q >= 0n ? q + 1n : q; // an exact half: q + 1/2 is positive iff q >= 0
}

function ceilDiv(num: bigint, den: bigint): bigint {
  return -floorDiv(-num, den);
}

describe('design-doc worked example', () => {
  // Sales 40,000.00 earning 4,000 points worth 1.00 each, 80% expected to be redeemed.
  const priceMinor = 4_000_000n;
  const points = 4_000n;
  const pointValueMinor = 100n;
  const u80 = rateToMillionths(0.8);
  const u90 = rateToMillionths(0.9);

  test('rates 0.8 and 0.9 are exact millionths', () => {
    assert.equal(u80, 800_000n);
    assert.equal(u90, 900_000n);
  });

  test('allocation to the points: 40,000 x 3,200 / 43,200 = 2,962.96', () => {
    const a = allocateRelativeSsp({ priceMinor, points, pointValueMinor, expectedRedemption: u80 });
    assert.equal(a, 296_296n);
    // the same figure straight from the exact fraction 40,000.00 x 3,200.00 / 43,200.00
    assert.equal(divRound(4_000_000n * 320_000n, 4_320_000n), 296_296n);
  });

  test('1,000 points redeemed recognises 925.93; raising the estimate to 90% gives 823.05, a catch-up of -102.88', () => {
    const input = { priceMinor, points, pointValueMinor, expectedRedemption: u80 };
    const allocatedMicro = allocateRelativeSspMicro(input);
    assert.equal(allocatedMicro, 296_296_296_296n); // 2,962.962962296... carried at fixed scale
    const allocatedMinor = allocateRelativeSsp(input);
    const cohort = { pointsIssued: points, allocatedMinor, allocatedMicro, pointsRedeemed: 1_000n, pointsExpired: 0n };
    const at80 = recognizedToDate({ ...cohort, ultimateRedemption: u80 });
    assert.equal(at80, 92_593n); // 2,962.962962 x 1,000 / 3,200 = 925.926 -> 925.93
    const at90 = recognizedToDate({ ...cohort, ultimateRedemption: u90 });
    assert.equal(at90, 82_305n); // 2,962.962962 x 1,000 / 3,600 = 823.045 -> 823.05
    assert.equal(at90 - at80, -10_288n); // the catch-up: the difference of two rounded cumulative figures

    // Rounding the allocation first (2,962.96) would give 823.04: why the cohort carries micro.
    const roundedFirst = recognizedToDate({ ...cohort, allocatedMicro: undefined, ultimateRedemption: u90 });
    assert.equal(roundedFirst, 82_304n);
    const exactNum = priceMinor * 320_000n; // P * S, S = 3,200.00 = 320,000 minor
    const exactDen = priceMinor + 320_000n; // P + S
    assert.equal(divRound(exactNum * 1_000n * K, exactDen * points * u90), 82_305n);
  });

  test('fully redeemed or expired cohort recognises the whole allocation', () => {
    const allocatedMinor = 296_296n;
    assert.equal(
      recognizedToDate({
        pointsIssued: points,
        allocatedMinor,
        pointsRedeemed: 3_000n,
        pointsExpired: 1_000n,
        ultimateRedemption: u80,
      }),
      296_296n,
    );
    // 3,200 redeemed = N x u: everything expected has been redeemed
    assert.equal(
      recognizedToDate({
        pointsIssued: points,
        allocatedMinor,
        pointsRedeemed: 3_200n,
        pointsExpired: 0n,
        ultimateRedemption: u80,
      }),
      296_296n,
    );
  });
});

describe('pointsEarned', () => {
  const rule = { points: 1, perAmountMinor: 100 };

  test('rounds down: a partial step earns nothing', () => {
    assert.equal(pointsEarned(4_999n, rule), 49n);
    assert.equal(pointsEarned(5_000n, rule), 50n);
    assert.equal(pointsEarned(99n, rule), 0n);
    assert.equal(pointsEarned(0n, rule), 0n);
    assert.equal(pointsEarned(4_000_000n, rule), 40_000n);
    assert.equal(pointsEarned(4_000_000n, { points: 1, perAmountMinor: 1_000 }), 4_000n);
    assert.equal(pointsEarned(1_999n, { points: 3, perAmountMinor: 1_000 }), 5n); // 5.997 -> 5
  });

  test('rejects a negative amount', () => {
    assert.throws(() => pointsEarned(-1n, rule), RangeError);
  });

  test('property: floor of amount x points / perAmount', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 1_000_000_000 }),
        (amount, pts, per) => {
          const n = pointsEarned(amount, { points: pts, perAmountMinor: per });
          assert.ok(n >= 0n);
          assert.ok(n * BigInt(per) <= amount * BigInt(pts));
          assert.ok((n + 1n) * BigInt(per) > amount * BigInt(pts));
        },
      ),
    );
  });
});

describe('allocateRelativeSsp', () => {
  const arb = fc.record({
    priceMinor: fc.oneof(fc.bigInt({ min: 1n, max: 1_000n }), fc.bigInt({ min: 1n, max: 10n ** 15n })),
    points: fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: 0n, max: 10n ** 12n })),
    pointValueMinor: fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: 10n ** 9n })),
    expectedRedemption: fc.oneof(fc.constantFrom(0n, 1n, 500_000n, K), fc.bigInt({ min: 0n, max: K })),
  });

  test('zero when there are no points, no expected redemption or no price', () => {
    assert.equal(
      allocateRelativeSsp({ priceMinor: 10_000n, points: 0n, pointValueMinor: 100n, expectedRedemption: 800_000n }),
      0n,
    );
    assert.equal(
      allocateRelativeSsp({ priceMinor: 10_000n, points: 10n, pointValueMinor: 100n, expectedRedemption: 0n }),
      0n,
    );
    assert.equal(
      allocateRelativeSsp({ priceMinor: 0n, points: 10n, pointValueMinor: 100n, expectedRedemption: 800_000n }),
      0n,
    );
  });

  test('small examples', () => {
    // P = 1.00, S = 1.00 -> a = 0.50
    assert.equal(
      allocateRelativeSsp({ priceMinor: 100n, points: 1n, pointValueMinor: 100n, expectedRedemption: K }),
      50n,
    );
    // P = 1, S = 1 (minor) -> a = 0.5 minor -> 1 (half away from zero)
    assert.equal(allocateRelativeSsp({ priceMinor: 1n, points: 1n, pointValueMinor: 1n, expectedRedemption: K }), 1n);
    // P = 3, S = 1 -> 0.75 -> 1 ; P = 1, S = 0.3 -> 0.2307 -> 0
    assert.equal(allocateRelativeSsp({ priceMinor: 3n, points: 1n, pointValueMinor: 1n, expectedRedemption: K }), 1n);
    assert.equal(
      allocateRelativeSsp({ priceMinor: 1n, points: 1n, pointValueMinor: 1n, expectedRedemption: 300_000n }),
      0n,
    );
  });

  test('property: never negative, never above the price, never above S = n*v*u rounded up', () => {
    fc.assert(
      fc.property(arb, (input) => {
        const a = allocateRelativeSsp(input);
        const sCeil = ceilDiv(input.points * input.pointValueMinor * input.expectedRedemption, K);
        assert.ok(a >= 0n, `negative allocation ${a}`);
        assert.ok(a <= input.priceMinor, `allocation ${a} above price ${input.priceMinor}`);
        assert.ok(a <= sCeil, `allocation ${a} above SSP ${sCeil}`);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: zero points allocate nothing', () => {
    fc.assert(
      fc.property(arb, (input) => {
        assert.equal(allocateRelativeSsp({ ...input, points: 0n }), 0n);
      }),
    );
  });

  test('property: within half a minor unit of the exact P*S/(P+S)', () => {
    fc.assert(
      fc.property(arb, (input) => {
        const a = allocateRelativeSsp(input);
        const sScaled = input.points * input.pointValueMinor * input.expectedRedemption;
        if (sScaled === 0n) return;
        const num = input.priceMinor * sScaled;
        const den = input.priceMinor * K + sScaled;
        assert.equal(a, roundHalfAwayRef(num, den));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('provisionIncrementalCost', () => {
  test('examples', () => {
    assert.equal(
      provisionIncrementalCost({ points: 4_000n, costPerPointMinor: 40n, expectedRedemption: 800_000n }),
      128_000n,
    );
    assert.equal(provisionIncrementalCost({ points: 3n, costPerPointMinor: 1n, expectedRedemption: 500_000n }), 2n); // 1.5 -> 2
    assert.equal(provisionIncrementalCost({ points: 0n, costPerPointMinor: 40n, expectedRedemption: 800_000n }), 0n);
  });

  test('property: never negative and never above the full cost', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        fc.bigInt({ min: 0n, max: K }),
        (points, costPerPointMinor, expectedRedemption) => {
          const p = provisionIncrementalCost({ points, costPerPointMinor, expectedRedemption });
          assert.ok(p >= 0n);
          assert.ok(p <= points * costPerPointMinor);
        },
      ),
    );
  });
});

describe('divRound', () => {
  test('halves go away from zero (as PostgreSQL round(numeric))', () => {
    assert.equal(divRound(5n, 2n), 3n);
    assert.equal(divRound(-5n, 2n), -3n);
    assert.equal(divRound(5n, -2n), -3n);
    assert.equal(divRound(-5n, -2n), 3n);
    assert.equal(divRound(1n, 2n), 1n);
    assert.equal(divRound(-1n, 2n), -1n);
    assert.equal(divRound(7n, 3n), 2n);
    assert.equal(divRound(-7n, 3n), -2n);
    assert.equal(divRound(8n, 3n), 3n);
    assert.equal(divRound(-8n, 3n), -3n);
    assert.equal(divRound(0n, 7n), 0n);
    assert.equal(divRound(6n, 3n), 2n);
  });

  test('division by zero throws', () => {
    assert.throws(() => divRound(1n, 0n), RangeError);
  });

  test('property: matches exact rational rounding, positive and negative numerators', () => {
    const big = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n });
    const small = fc.bigInt({ min: -1000n, max: 1000n });
    fc.assert(
      fc.property(fc.oneof(small, big), fc.oneof(small, big), (num, den) => {
        fc.pre(den !== 0n);
        assert.equal(divRound(num, den), roundHalfAwayRef(num, den));
      }),
      { numRuns: 5000 },
    );
  });

  test('property: exact halves round away from zero', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        (q, half) => {
          const den = 2n * half;
          const num = q * den + (q >= 0n ? half : -half); // q + 1/2 or q - 1/2
          const expected = q >= 0n ? q + 1n : q - 1n;
          assert.equal(divRound(num, den), expected);
        },
      ),
    );
  });

  test('property: odd symmetry divRound(-n, d) = -divRound(n, d)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        (num, den) => {
          assert.equal(divRound(-num, den), -divRound(num, den));
        },
      ),
    );
  });
});

describe('rateToMillionths', () => {
  test('exact decimals of up to 6 places', () => {
    assert.equal(rateToMillionths(0), 0n);
    assert.equal(rateToMillionths(1), 1_000_000n);
    assert.equal(rateToMillionths(0.8), 800_000n);
    assert.equal(rateToMillionths(0.123456), 123_456n);
    assert.equal(rateToMillionths(0.000001), 1n);
    assert.equal(millionthsToRate(800_000n), 0.8);
  });

  test('rejects more than 6 decimals, out of range and non-finite', () => {
    for (const r of [
      0.1234567,
      0.0000001,
      0.9999995,
      1.000001,
      1.5,
      -0.1,
      -0.000001,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ]) {
      assert.throws(() => rateToMillionths(r), RangeError, String(r));
      assert.equal(isExactRate(r), false, String(r));
    }
  });

  test('property: every k/10^6 in [0, 1] round-trips to k', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), (k) => {
        assert.equal(rateToMillionths(k / 1_000_000), BigInt(k));
        assert.equal(rateToMillionths(millionthsToRate(BigInt(k))), BigInt(k));
      }),
    );
  });
});

test('fixed-scale decimals of rates, both ways, exactly', () => {
  assert.equal(millionthsToDecimal(970_000n), '0.970000');
  assert.equal(millionthsToDecimal(RATE_SCALE), '1.000000');
  assert.equal(decimalToMillionths('0.970000'), 970_000n);
  assert.equal(decimalToMillionths('0.5'), 500_000n);
  assert.equal(decimalToMillionths('1'), RATE_SCALE);
  assert.throws(() => decimalToMillionths('0.1234567'), RangeError);
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: RATE_SCALE }), (m) => decimalToMillionths(millionthsToDecimal(m)) === m),
  );
});
