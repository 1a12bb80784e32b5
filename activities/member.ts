import type { Pool } from 'pg';
import { armMember, expireMember, type ArmState, type ExpiryResult } from '../db/ledger';

export interface MemberRef {
  programId: string;
  memberId: string;
}

/** The member workflow's side effects, bound to the ledger database. */
export function createMemberActivities(pool: Pool) {
  return {
    /** Reads the member's deadline and records that the workflow's timer is armed for it. */
    async armExpiryTimer(ref: MemberRef): Promise<ArmState> {
      return armMember(pool, ref.programId, ref.memberId);
    },

    /**
     * Expires the whole available balance if the deadline is at or before asOf (the workflow's
     * clock). Re-checked under the member's row lock, so a purchase that just moved the deadline wins.
     */
    async expireUnprotectedPoints(input: MemberRef & { asOf: string }): Promise<ExpiryResult> {
      return expireMember(pool, input.programId, input.memberId, input.asOf, 'system:member-workflow');
    },
  };
}

export type MemberActivities = ReturnType<typeof createMemberActivities>;
