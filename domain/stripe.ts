import { createHash } from 'node:crypto';

/** Cohort figures are striped over this many rows per cohort (cohort_stripes in db/migrations/001_baseline.sql; ll_stripe in db/functions/ll_stripe.sql computes the same stripe). */
export const STRIPES = 16;

/** The stripe of a member: the same function as ll_stripe in SQL (md5, 4th byte, low 4 bits). */
export function stripeOf(memberId: string): number {
  return createHash('md5').update(memberId, 'utf8').digest()[3]! & (STRIPES - 1);
}
