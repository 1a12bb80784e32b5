import assert from 'node:assert/strict';
import { test } from 'vitest';
import { balanceCheck, endOfDay, monthsToDate, monthView } from '../../domain/gl-balance';

const sums = (o: Record<string, bigint>) => Object.entries(o).map(([account, netMinor]) => ({ account, netMinor }));

test('the balance check lists an account whose difference is not what is not yet in the GL, with both figures', () => {
  const r = balanceCheck(
    '2026-11-21',
    sums({ revenue: 1000n, loyalty_contract_liability: -800n, loyalty_revenue: -200n }),
    sums({ revenue: 900n, loyalty_contract_liability: -700n, loyalty_revenue: -207n, breakage_revenue: 7n }),
    sums({ revenue: 100n, loyalty_contract_liability: -100n }),
  );
  assert.deepEqual(
    r.accounts.map((a) => [a.account, a.subledgerMinor, a.glMinor, a.differenceMinor, a.notYetInGlMinor]),
    [
      ['breakage_revenue', 0, 7, -7, 0],
      ['loyalty_contract_liability', -800, -700, -100, -100],
      ['loyalty_revenue', -200, -207, 7, 0],
      ['revenue', 1000, 900, 100, 100],
    ],
  );
  assert.deepEqual(
    r.differences.map((d) => d.account),
    ['breakage_revenue', 'loyalty_revenue'],
  );
  assert.equal(r.differenceCount, 2);
});

test('bigint sums past 2^53 in parts stay exact', () => {
  const big = 2n ** 60n;
  const r = balanceCheck('2026-01-01', sums({ revenue: big + 1n }), sums({ revenue: big }), []);
  // the difference is exact even where the balances are not representable as doubles
  assert.equal(r.accounts[0]!.differenceMinor, 1);
});

test('the monthly view and the months of a year to date', () => {
  assert.deepEqual(monthsToDate('2024-03-15'), [
    { month: '2024-01', from: '2024-01-01', to: '2024-01-31' },
    { month: '2024-02', from: '2024-02-01', to: '2024-02-29' },
    { month: '2024-03', from: '2024-03-01', to: '2024-03-15' },
  ]);
  const m = monthView('2024-02', '2024-02-29', sums({ revenue: 5n, loyalty_revenue: -5n }), sums({ revenue: 5n }));
  assert.deepEqual(m.accounts, [
    { account: 'loyalty_revenue', subledgerMovementMinor: -5, glMovementMinor: 0, differenceMinor: -5 },
    { account: 'revenue', subledgerMovementMinor: 5, glMovementMinor: 5, differenceMinor: 0 },
  ]);
  assert.equal(m.differenceCount, 1);
  assert.equal(endOfDay('2024-02-29').toISOString(), '2024-03-01T00:00:00.000Z');
});
