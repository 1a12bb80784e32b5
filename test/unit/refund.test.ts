import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyRevocation, revocationForRefund } from '../../domain/refund';

/** Revocations for a sequence of refunds of one invoice, in order. */
function revocations(earned: bigint, invoiceAmountMinor: bigint, refunds: bigint[]): bigint[] {
  let before = 0n;
  return refunds.map((refundMinor) => {
    const r = revocationForRefund({ earned, invoiceAmountMinor, refundedBeforeMinor: before, refundMinor });
    before += refundMinor;
    return r;
  });
}

const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);

describe('revocationForRefund: examples', () => {
  test('a full refund revokes every point', () => {
    assert.equal(revocationForRefund({ earned: 4_000n, invoiceAmountMinor: 4_000_000n, refundedBeforeMinor: 0n, refundMinor: 4_000_000n }), 4_000n);
  });

  test('a half refund revokes half', () => {
    assert.equal(revocationForRefund({ earned: 4_000n, invoiceAmountMinor: 4_000_000n, refundedBeforeMinor: 0n, refundMinor: 2_000_000n }), 2_000n);
  });

  test('thirds: cumulative rounding, 33 + 34 + 33 = 100', () => {
    assert.deepEqual(revocations(100n, 10_000n, [3_333n, 3_333n, 3_334n]), [33n, 34n, 33n]);
  });

  test('a refund of one of three equal parts, in any order, revokes consistently', () => {
    // 10 points on 3.00: 1.00 refunded -> round(3.33) = 3, then 2.00 in total -> round(6.67) = 7
    assert.deepEqual(revocations(10n, 300n, [100n, 100n, 100n]), [3n, 4n, 3n]);
  });

  test('halves round away from zero on the cumulative figure', () => {
    // 1 point on 2 minor units: refunding 1 is exactly half a point -> revoke it; the second refund revokes nothing
    assert.deepEqual(revocations(1n, 2n, [1n, 1n]), [1n, 0n]);
    // 5 points on 2: 2.5 -> 3, then 5 - 3 = 2
    assert.deepEqual(revocations(5n, 2n, [1n, 1n]), [3n, 2n]);
  });

  test('tiny refunds can revoke nothing, without drift: many 1-minor refunds still total the earned points', () => {
    const refunds = Array.from({ length: 1_000 }, () => 1n);
    const rs = revocations(7n, 1_000n, refunds);
    assert.equal(sum(rs), 7n);
    assert.ok(rs.every((r) => r === 0n || r === 1n));
  });

  test('no points earned: nothing to revoke', () => {
    assert.deepEqual(revocations(0n, 500n, [100n, 400n]), [0n, 0n]);
  });

  test('refunds outside the invoice amount are rejected', () => {
    const base = { earned: 10n, invoiceAmountMinor: 1_000n };
    assert.throws(() => revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: 0n }), RangeError);
    assert.throws(() => revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: -1n }), RangeError);
    assert.throws(() => revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: 1_001n }), RangeError);
    assert.throws(() => revocationForRefund({ ...base, refundedBeforeMinor: 600n, refundMinor: 401n }), RangeError);
    assert.throws(() => revocationForRefund({ ...base, refundedBeforeMinor: -1n, refundMinor: 1n }), RangeError);
    assert.equal(revocationForRefund({ ...base, refundedBeforeMinor: 600n, refundMinor: 400n }), 4n);
  });
});

describe('revocationForRefund: properties', () => {
  /** An invoice split into a sequence of positive refunds summing to its amount. */
  const split = fc
    .array(fc.oneof(fc.bigInt({ min: 1n, max: 10n }), fc.bigInt({ min: 1n, max: 10n ** 12n })), { minLength: 1, maxLength: 30 })
    .map((parts) => ({ parts, total: sum(parts) }));
  const earnedArb = fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 10n ** 12n }));

  test('revocations over any full split sum exactly to the earned points, each >= 0', () => {
    fc.assert(
      fc.property(split, earnedArb, ({ parts, total }, earned) => {
        const rs = revocations(earned, total, parts);
        assert.equal(sum(rs), earned);
        for (const r of rs) assert.ok(r >= 0n, `negative revocation ${r}`);
      }),
      { numRuns: 2000 },
    );
  });

  test('a fixed invoice split at random cut points', () => {
    const arb = fc
      .record({ total: fc.bigInt({ min: 1n, max: 10n ** 15n }), earned: earnedArb })
      .chain(({ total, earned }) =>
        fc
          .uniqueArray(fc.bigInt({ min: 1n, max: total }), { maxLength: 20, comparator: (a, b) => a === b })
          .map((cuts) => ({ total, earned, cuts: [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) })),
      );
    fc.assert(
      fc.property(arb, ({ total, earned, cuts }) => {
        const points = [...cuts.filter((c) => c < total), total];
        const parts = points.map((p, i) => p - (i === 0 ? 0n : (points[i - 1] ?? 0n)));
        assert.equal(sum(parts), total);
        const rs = revocations(earned, total, parts);
        assert.equal(sum(rs), earned);
        for (const r of rs) assert.ok(r >= 0n);
      }),
      { numRuns: 1000 },
    );
  });

  test('a partial sequence never revokes more than the earned points, and never more than the refunded share rounded', () => {
    fc.assert(
      fc.property(split, earnedArb, fc.nat(), ({ parts, total }, earned, k) => {
        const prefix = parts.slice(0, k % parts.length);
        const refunded = sum(prefix);
        const revoked = sum(revocations(earned, total, prefix));
        assert.ok(revoked <= earned);
        // |revoked - earned * refunded / total| <= 1/2
        const diff = 2n * (revoked * total - earned * refunded);
        assert.ok(diff <= total && -diff <= total);
      }),
    );
  });
});

describe('applyRevocation', () => {
  test('examples', () => {
    assert.deepEqual(applyRevocation(30n, 100n), { revoked: 30n, shortfall: 0n });
    assert.deepEqual(applyRevocation(100n, 100n), { revoked: 100n, shortfall: 0n });
    assert.deepEqual(applyRevocation(100n, 30n), { revoked: 30n, shortfall: 70n });
    assert.deepEqual(applyRevocation(100n, 0n), { revoked: 0n, shortfall: 100n });
    assert.deepEqual(applyRevocation(0n, 0n), { revoked: 0n, shortfall: 0n });
    assert.deepEqual(applyRevocation(0n, 50n), { revoked: 0n, shortfall: 0n });
    assert.deepEqual(applyRevocation(10n, -5n), { revoked: 0n, shortfall: 10n });
  });

  test('property: never more than available, never negative, revoked + shortfall = toRevoke', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 10n ** 15n })),
        fc.oneof(fc.constant(0n), fc.bigInt({ min: -20n, max: 20n }), fc.bigInt({ min: -(10n ** 6n), max: 10n ** 15n })),
        (toRevoke, available) => {
          const { revoked, shortfall } = applyRevocation(toRevoke, available);
          assert.ok(revoked >= 0n, `negative revoked ${revoked}`);
          assert.ok(shortfall >= 0n, `negative shortfall ${shortfall}`);
          assert.ok(revoked <= (available > 0n ? available : 0n));
          assert.ok(revoked <= toRevoke);
          assert.equal(revoked + shortfall, toRevoke);
          // takes as much as it can
          const availableNonNeg = available > 0n ? available : 0n;
          assert.equal(revoked, toRevoke < availableNonNeg ? toRevoke : availableNonNeg);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
