import assert from 'node:assert/strict';
import { test } from 'vitest';
import { redemptionLimitedBy } from '../../domain/redemption-quote';

const M = 1_000_000;

test('limitedBy names the least of the request, the available points and the invoice share', () => {
  assert.equal(
    redemptionLimitedBy({ requested: 100, available: 500, invoiceShareCap: 400, maxPerRedemption: M }),
    'requested',
  );
  assert.equal(
    redemptionLimitedBy({ requested: 600, available: 500, invoiceShareCap: 800, maxPerRedemption: M }),
    'available',
  );
  assert.equal(
    redemptionLimitedBy({ requested: 600, available: 500, invoiceShareCap: 400, maxPerRedemption: M }),
    'invoice_share',
  );
  assert.equal(
    redemptionLimitedBy({ requested: null, available: 500, invoiceShareCap: 400, maxPerRedemption: M }),
    'invoice_share',
  );
  assert.equal(
    redemptionLimitedBy({ requested: null, available: 300, invoiceShareCap: 400, maxPerRedemption: M }),
    'available',
  );
});

test('on a tie the request is named first, then the available points', () => {
  assert.equal(
    redemptionLimitedBy({ requested: 400, available: 400, invoiceShareCap: 400, maxPerRedemption: M }),
    'requested',
  );
  assert.equal(
    redemptionLimitedBy({ requested: null, available: 400, invoiceShareCap: 400, maxPerRedemption: M }),
    'available',
  );
  assert.equal(
    redemptionLimitedBy({ requested: 900, available: 400, invoiceShareCap: 400, maxPerRedemption: M }),
    'available',
  );
});

test('no points asked for: as many as one redemption may ask for, named when it is the least', () => {
  assert.equal(
    redemptionLimitedBy({ requested: null, available: 5_000, invoiceShareCap: 4_000, maxPerRedemption: 3_000 }),
    'max_per_redemption',
  );
  assert.equal(
    redemptionLimitedBy({ requested: null, available: 3_000, invoiceShareCap: 4_000, maxPerRedemption: 3_000 }),
    'available',
  );
});
