import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RATE_SCALE } from '../../domain/money';
import { recognizedToDate, type CohortFigures } from '../../domain/recognition';

const K = RATE_SCALE;

/** A consistent cohort: redeemed + expired never exceed issued. */
const cohortArb: fc.Arbitrary<CohortFigures> = fc
  .record({
    pointsIssued: fc.oneof(fc.bigInt({ min: 1n, max: 50n }), fc.bigInt({ min: 1n, max: 10n ** 12n })),
    allocatedMinor: fc.oneof(
      fc.bigInt({ min: -100n, max: 100n }),
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.bigInt({ min: -(10n ** 9n), max: 10n ** 15n }),
    ),
    ultimateRedemption: fc.oneof(fc.constantFrom(1n, 500_000n, 800_000n, K), fc.bigInt({ min: 1n, max: K })),
    redeemedShare: fc.bigInt({ min: 0n, max: 1_000n }),
    expiredShare: fc.bigInt({ min: 0n, max: 1_000n }),
  })
  .map(({ pointsIssued, allocatedMinor, ultimateRedemption, redeemedShare, expiredShare }) => {
    const pointsRedeemed = (pointsIssued * redeemedShare) / 1_000n;
    const pointsExpired = ((pointsIssued - pointsRedeemed) * expiredShare) / 1_000n;
    return { pointsIssued, allocatedMinor, ultimateRedemption, pointsRedeemed, pointsExpired };
  });

/**
 * A cohort built from accruals: allocatedMinor is the sum of the allocations each rounded when posted,
 * allocatedMicro their exact sum (so round(allocatedMicro) may exceed allocatedMinor, or fall short).
 */
const accruedCohortArb: fc.Arbitrary<CohortFigures> = fc
  .record({
    c: cohortArb,
    accruals: fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 3_000_000n }), fc.bigInt({ min: 0n, max: 10n ** 15n })), {
      minLength: 1,
      maxLength: 8,
    }),
  })
  .map(({ c, accruals }) => ({
    ...c,
    allocatedMinor: accruals.reduce((s, m) => s + (m + 500_000n) / 1_000_000n, 0n),
    allocatedMicro: accruals.reduce((s, m) => s + m, 0n),
  }));

const clampedAllocation = (c: CohortFigures) => (c.allocatedMinor > 0n ? c.allocatedMinor : 0n);

describe('recognizedToDate: examples', () => {
  test('incremental cost: released = provision - cost x min(outstanding, N x u - R)', () => {
    const c = {
      pointsIssued: 1000n,
      allocatedMinor: 1600n,
      pointsRedeemed: 400n,
      pointsExpired: 0n,
      costPerPointMinor: 2n,
    };
    assert.equal(recognizedToDate({ ...c, ultimateRedemption: 800_000n }), 800n); // each redemption releases its cost
    assert.equal(recognizedToDate({ ...c, ultimateRedemption: 500_000n }), 1400n); // 200 left for the 100 still expected
    assert.equal(recognizedToDate({ ...c, ultimateRedemption: 300_000n }), 1600n); // more redeemed than expected: nothing left
    assert.equal(recognizedToDate({ ...c, pointsExpired: 500n, ultimateRedemption: 1_000_000n }), 1400n); // only 100 outstanding
  });

  const base = { pointsIssued: 4_000n, allocatedMinor: 296_296n, pointsExpired: 0n, ultimateRedemption: 800_000n };

  test('nothing redeemed: nothing recognised', () => {
    assert.equal(recognizedToDate({ ...base, pointsRedeemed: 0n }), 0n);
  });

  test('pro rata to expected redemptions', () => {
    assert.equal(recognizedToDate({ ...base, pointsRedeemed: 1_600n }), 148_148n); // half of 3,200 expected
    assert.equal(recognizedToDate({ ...base, pointsRedeemed: 1_000n }), 92_593n);
  });

  test('redemptions beyond the expected N x u recognise everything', () => {
    assert.equal(recognizedToDate({ ...base, pointsRedeemed: 3_500n }), 296_296n);
  });

  test('redemptions at N x u recognise what was posted, not round(A_micro), while the cohort is open', () => {
    // three accruals of 1.4 post 1 + 1 + 1 = 3 but carry 4.2 exactly: recognising 4 would leave -1
    const c = { ...base, allocatedMinor: 3n, allocatedMicro: 4_200_000n };
    assert.equal(recognizedToDate({ ...c, pointsRedeemed: 3_200n }), 3n);
    assert.equal(recognizedToDate({ ...c, pointsRedeemed: 3_999n }), 3n);
    assert.equal(recognizedToDate({ ...c, pointsRedeemed: 3_100n }), 3n); // round(4.2 x 31/32) = 4, capped
    assert.equal(recognizedToDate({ ...c, pointsRedeemed: 2_000n }), 3n); // round(2.625)
    assert.equal(recognizedToDate({ ...c, pointsRedeemed: 1_000n }), 1n); // round(1.3125)
  });

  test('expiry of the rest recognises everything', () => {
    assert.equal(recognizedToDate({ ...base, pointsRedeemed: 100n, pointsExpired: 3_900n }), 296_296n);
  });

  test('a cohort with no points left (all revoked) recognises its net allocation', () => {
    assert.equal(recognizedToDate({ ...base, pointsIssued: 0n, pointsRedeemed: 0n }), 296_296n);
  });

  test('a negative net allocation recognises nothing', () => {
    assert.equal(recognizedToDate({ ...base, allocatedMinor: -5n, pointsRedeemed: 1_000n }), 0n);
    assert.equal(recognizedToDate({ ...base, allocatedMinor: -5n, pointsRedeemed: 4_000n }), 0n);
  });
});

describe('recognizedToDate: properties', () => {
  test('never negative, never more than the allocation', () => {
    fc.assert(
      fc.property(cohortArb, (c) => {
        const r = recognizedToDate(c);
        assert.ok(r >= 0n, `negative recognition ${r}`);
        assert.ok(r <= clampedAllocation(c), `recognised ${r} above allocated ${c.allocatedMinor}`);
      }),
      { numRuns: 3000 },
    );
  });

  test('never more than was posted when the exact allocation rounds above it (allocatedMicro != posted)', () => {
    fc.assert(
      fc.property(accruedCohortArb, (c) => {
        const r = recognizedToDate(c);
        assert.ok(r >= 0n, `negative recognition ${r}`);
        assert.ok(
          r <= clampedAllocation(c),
          `recognised ${r} above posted ${c.allocatedMinor} (${c.allocatedMicro} micro)`,
        );
        const done = recognizedToDate({ ...c, pointsExpired: c.pointsIssued - c.pointsRedeemed });
        assert.ok(r <= done, `recognised ${r} above the completed cohort's ${done}`);
      }),
      { numRuns: 3000 },
    );
  });

  test('monotone non-decreasing in redeemed points', () => {
    fc.assert(
      fc.property(cohortArb, fc.bigInt({ min: 0n, max: 10n ** 12n }), (c, extra) => {
        const room = c.pointsIssued - c.pointsExpired - c.pointsRedeemed;
        const more = room > 0n ? extra % (room + 1n) : 0n;
        const before = recognizedToDate(c);
        const after = recognizedToDate({ ...c, pointsRedeemed: c.pointsRedeemed + more });
        assert.ok(after >= before, `recognised fell from ${before} to ${after} after ${more} more redeemed`);
      }),
      { numRuns: 3000 },
    );
  });

  test('one more point redeemed at a time never decreases recognition', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 200n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: K }),
        (pointsIssued, allocatedMinor, ultimateRedemption) => {
          let prev = -1n;
          for (let r = 0n; r <= pointsIssued; r++) {
            const cur = recognizedToDate({
              pointsIssued,
              allocatedMinor,
              ultimateRedemption,
              pointsRedeemed: r,
              pointsExpired: 0n,
            });
            assert.ok(cur >= prev);
            prev = cur;
          }
          assert.equal(prev, allocatedMinor);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('equals the allocation once redeemed + expired >= issued', () => {
    fc.assert(
      fc.property(cohortArb, fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.boolean(), (c, over, viaExpiry) => {
        const rest = c.pointsIssued - c.pointsRedeemed - c.pointsExpired + over;
        const done = viaExpiry
          ? { ...c, pointsExpired: c.pointsExpired + rest }
          : { ...c, pointsRedeemed: c.pointsRedeemed + rest };
        assert.ok(done.pointsRedeemed + done.pointsExpired >= done.pointsIssued);
        assert.equal(recognizedToDate(done), clampedAllocation(c));
      }),
      { numRuns: 2000 },
    );
  });

  test('a higher ultimate redemption rate never increases recognised revenue', () => {
    fc.assert(
      fc.property(cohortArb, fc.bigInt({ min: 1n, max: K }), (c, other) => {
        const lo = c.ultimateRedemption < other ? c.ultimateRedemption : other;
        const hi = c.ultimateRedemption < other ? other : c.ultimateRedemption;
        const atLo = recognizedToDate({ ...c, ultimateRedemption: lo });
        const atHi = recognizedToDate({ ...c, ultimateRedemption: hi });
        assert.ok(atHi <= atLo, `u ${lo} -> ${hi} raised recognition ${atLo} -> ${atHi}`);
      }),
      { numRuns: 3000 },
    );
  });

  test('within half a minor unit of A x min(1, R / (N x u)) while points remain outstanding', () => {
    fc.assert(
      fc.property(cohortArb, (c) => {
        fc.pre(c.pointsRedeemed + c.pointsExpired < c.pointsIssued);
        const a = clampedAllocation(c);
        const r = recognizedToDate(c);
        const num = c.pointsRedeemed * K;
        const den = c.pointsIssued * c.ultimateRedemption;
        if (num >= den) {
          assert.equal(r, a);
        } else {
          const diff = 2n * (r * den - a * num); // 2 (r - a R/(N u)) scaled by den
          assert.ok(diff <= den && -diff <= den, `recognised ${r} too far from exact`);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
