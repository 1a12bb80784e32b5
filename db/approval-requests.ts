import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { Principal } from './keys';

// Decision requests (migration 011; issue 14, item 1). The API writes one per decision asked for,
// with the principal it authenticated, and passes the workflow only its id; the workflow's activity
// verifies it here before the decision counts. A name in an update or a signal counts for nothing:
// anyone who can reach Temporal can write one.

export type DecisionKind =
  | 'close_approval'
  | 'rule_change_decision'
  | 'adjustment_approval'
  | 'close_start'
  | 'rule_change_withdrawal'
  | 'chargeback';

export interface DecisionRequest {
  kind: DecisionKind;
  programId: string;
  /** the close's period, the rule change's id, the adjustment's id, the chargeback's invoice */
  subject: string;
  workflowId: string;
  /**
   * 'request': asking for the thing itself (a close's start), `withdraw`: withdrawing one's own
   * rule change (each for, and only for, its kind: migration 016); else a decision on someone else's
   */
  decision: 'approve' | 'reject' | 'request' | 'withdraw';
  comment: string | null;
  /** the request's own terms, which the workflow takes from here (a close's override) */
  detail?: unknown;
}

/** Records a decision asked for by `principal` (the API's authenticated key); returns its id. */
export async function recordDecisionRequest(pool: Pool, principal: Principal, r: DecisionRequest): Promise<string> {
  const requestId = randomUUID();
  await pool.query(
    `insert into decision_requests (request_id, kind, program_id, subject, workflow_id, key_id, principal, decision, comment, detail)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      requestId,
      r.kind,
      r.programId,
      r.subject,
      r.workflowId,
      principal.keyId,
      principal.name,
      r.decision,
      r.comment,
      r.detail === undefined ? null : JSON.stringify(r.detail),
    ],
  );
  return requestId;
}

export interface VerifiedDecision {
  requestId: string;
  /** the principal of the key that asked, as the keys table has it now */
  by: string;
  /** the roles the key and its principal both hold now */
  roles: string[];
  /** a start (close_start) or a withdrawal (rule_change_withdrawal) of one's own verifies as 'approve' */
  decision: 'approve' | 'reject';
  comment: string | null;
  detail: unknown;
}

export type DecisionVerdict = { ok: true; decision: VerifiedDecision } | { ok: false; code: string; reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether the request `requestId` may count as a decision on the object `expect` names: it exists,
 * the API wrote it for this kind, program, subject and workflow; the key that asked is still in the
 * keys table, not revoked, still of the same principal, and for this program; that principal exists
 * and is active; key and principal both hold one of `anyOfRoles`; and it is not `requester` (the
 * close's starter, the change's proposer, read from the database by the caller). A decision (not a
 * 'request' of one's own) needs a person, and `admin` does not stand in for the role (issue 14,
 * item 5; api/auth.ts requireRole has the same rule). Anything else is refused.
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
    decision: 'approve' | 'reject' | 'request' | 'withdraw';
    comment: string | null;
    detail: unknown;
    key_principal: string | null;
    key_roles: string[] | null;
    key_programs: string[] | null;
    revoked: boolean | null;
    principal_kind: string | null;
    principal_roles: string[] | null;
    principal_disabled: boolean | null;
  }>(
    `select d.kind, d.program_id, d.subject, d.workflow_id, d.principal, d.decision, d.comment, d.detail,
            k.principal as key_principal, k.roles as key_roles, k.programs as key_programs,
            k.revoked_at is not null as revoked, p.kind as principal_kind, p.roles as principal_roles,
            p.disabled_at is not null as principal_disabled
       from decision_requests d
       left join api_keys k on k.key_id = d.key_id
       left join principals p on p.principal_id = k.principal
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
  if (d.principal_kind === null || d.principal_disabled)
    return { ok: false, code: 'unauthorized', reason: `principal ${d.principal} is unknown or disabled` };
  if (d.key_programs !== null && !d.key_programs.includes(d.program_id))
    return { ok: false, code: 'program_not_allowed', reason: `the key is not for program ${d.program_id}` };
  // a start or a withdrawal is the principal's own act (admin may, as the API lets it); an approval
  // or rejection decides someone else's request: a person in the role (the database pairs each
  // kind with its decisions, migration 016)
  const own = expect.kind === 'close_start' || expect.kind === 'rule_change_withdrawal' || expect.kind === 'chargeback';
  const deciding = !own;
  if (deciding !== (d.decision === 'approve' || d.decision === 'reject'))
    return { ok: false, code: 'decision_request_mismatch', reason: 'the decision request is for another object' };
  const held = (d.key_roles ?? []).filter((r) => (d.principal_roles ?? []).includes(r));
  if (deciding && d.principal_kind !== 'person')
    return { ok: false, code: 'decision_needs_person', reason: 'a decision is made by a person, not a service key' };
  const admin = !deciding && held.includes('admin');
  if (!admin && !held.some((r) => anyOfRoles.includes(r)))
    return { ok: false, code: 'forbidden', reason: `the principal holds none of the roles ${anyOfRoles.join(', ')}` };
  if (requester !== null && d.principal === requester)
    return { ok: false, code: 'segregation_of_duties', reason: 'the requester cannot decide their own request' };
  return {
    ok: true,
    decision: {
      requestId,
      by: d.principal,
      // deciding, admin stands in for no role: a workflow matching roles to open slots never sees it
      roles: deciding ? held.filter((r) => r !== 'admin') : held,
      decision: d.decision === 'reject' ? 'reject' : 'approve',
      comment: d.comment,
      detail: d.detail,
    },
  };
}
