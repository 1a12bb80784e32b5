import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { Principal } from './keys';

// Decision requests (migration 011; issue 14, item 1). The API writes one per decision asked for,
// with the principal it authenticated, and passes the workflow only its id; the workflow's activity
// verifies it here before the decision counts. A name in an update or a signal counts for nothing:
// anyone who can reach Temporal can write one.

export type DecisionKind = 'close_approval' | 'rule_change_decision' | 'adjustment_approval' | 'rule_change_withdrawal';

export interface DecisionRequest {
  kind: DecisionKind;
  programId: string;
  /** the close's period, the rule change's id, the adjustment's id */
  subject: string;
  workflowId: string;
  /** `withdraw` for (and only for) a rule_change_withdrawal (migration 016) */
  decision: 'approve' | 'reject' | 'withdraw';
  comment: string | null;
}

/** Records a decision asked for by `principal` (the API's authenticated key); returns its id. */
export async function recordDecisionRequest(pool: Pool, principal: Principal, r: DecisionRequest): Promise<string> {
  const requestId = randomUUID();
  await pool.query(
    `insert into decision_requests (request_id, kind, program_id, subject, workflow_id, key_id, principal, decision, comment)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [requestId, r.kind, r.programId, r.subject, r.workflowId, principal.keyId, principal.name, r.decision, r.comment],
  );
  return requestId;
}

export interface VerifiedDecision {
  requestId: string;
  /** the principal of the key that asked, as the keys table has it now */
  by: string;
  /** the key's roles now */
  roles: string[];
  decision: 'approve' | 'reject';
  comment: string | null;
}

export type DecisionVerdict = { ok: true; decision: VerifiedDecision } | { ok: false; code: string; reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether the request `requestId` may count as a decision on the object `expect` names: it exists,
 * the API wrote it for this kind, program, subject and workflow; the key that asked is still in the
 * keys table, not revoked, still of the same principal; that principal holds one of `anyOfRoles`
 * (admin holds every role, as api/auth.ts requireRole has it) and is not `requester` (the close's
 * starter, the change's proposer, read from the database by the caller). Anything else is refused.
 */
export async function verifyDecisionRequest(
  pool: Pool,
  requestId: unknown,
  expect: { kind: DecisionKind; programId: string; subject: string; workflowId: string },
  anyOfRoles: readonly string[],
  requester: string | null,
): Promise<DecisionVerdict> {
  if (typeof requestId !== 'string' || !UUID.test(requestId))
    return { ok: false, code: 'decision_request_unknown', reason: 'not a decision request id' };
  const { rows } = await pool.query<{
    kind: string;
    program_id: string;
    subject: string;
    workflow_id: string;
    principal: string;
    decision: 'approve' | 'reject';
    comment: string | null;
    key_principal: string | null;
    key_roles: string[] | null;
    revoked: boolean | null;
  }>(
    `select d.kind, d.program_id, d.subject, d.workflow_id, d.principal, d.decision, d.comment,
            k.principal as key_principal, k.roles as key_roles, k.revoked_at is not null as revoked
       from decision_requests d left join api_keys k on k.key_id = d.key_id
      where d.request_id = $1`,
    [requestId],
  );
  const d = rows[0];
  if (!d) return { ok: false, code: 'decision_request_unknown', reason: 'no such decision request' };
  if (
    d.kind !== expect.kind ||
    d.program_id !== expect.programId ||
    d.subject !== expect.subject ||
    d.workflow_id !== expect.workflowId
  )
    return { ok: false, code: 'decision_request_mismatch', reason: 'the decision request is for another object' };
  if (d.key_principal === null || d.revoked || d.key_principal !== d.principal)
    return { ok: false, code: 'unauthorized', reason: 'the key that asked is unknown, revoked or of someone else' };
  const roles = d.key_roles ?? [];
  if (!roles.includes('admin') && !roles.some((r) => anyOfRoles.includes(r)))
    return { ok: false, code: 'forbidden', reason: `the approver holds none of the roles ${anyOfRoles.join(', ')}` };
  if (requester !== null && d.principal === requester)
    return { ok: false, code: 'segregation_of_duties', reason: 'the requester cannot decide their own request' };
  return {
    ok: true,
    decision: { requestId, by: d.principal, roles, decision: d.decision, comment: d.comment },
  };
}
