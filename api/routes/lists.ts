import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  listAdjustments,
  listCloses,
  listMembers,
  listRedemptions,
  listRuleChanges,
  approvalInbox,
} from '../../db/lists';
import { toMemberView } from '../../db/ledger';
import type { Role } from '../../db/keys';
import {
  decodeCursor,
  DEFAULT_PAGE,
  NO_TIME,
  pageOf,
  type CursorKey,
  type ListName,
  type Page,
} from '../../domain/cursor';
import { ApiError } from '../../domain/errors';
import { DEFAULT_RULE_CHANGE_APPROVERS } from '../../domain/rule-change';
import {
  adjustmentsListQuery,
  approvalsQuery,
  closesListQuery,
  membersListQuery,
  programParams,
  redemptionsListQuery,
  ruleChangesListQuery,
} from '../../domain/schemas';
import type { ApiContext } from '../context';
import { requireProgram } from '../auth';
import { parse } from '../validate';

/**
 * One page of `list`: the rows `fetch` reads after the query's cursor (decoded first: a bad one is
 * 400 before any query), limit + 1 of them, as items and the next cursor.
 */
async function page<R, T>(
  list: ListName,
  q: { limit?: number; cursor?: string },
  fetch: (p: { after: CursorKey | undefined; limit: number }) => Promise<R[]>,
  keyOf: (row: R) => CursorKey,
  view: (row: R) => T,
): Promise<Page<T>> {
  const limit = q.limit ?? DEFAULT_PAGE;
  const after = q.cursor === undefined ? undefined : decodeCursor(list, q.cursor);
  return pageOf(list, await fetch({ after, limit }), limit, keyOf, view);
}

const enc = encodeURIComponent;

/**
 * Cursor-paginated lists of a program's members, redemptions, adjustments, rule changes and
 * closes, and the approval inbox across programs (docs/api.md, "Lists and pagination" and "The
 * approval inbox"). Reads only: they run on the report pool.
 */
export function listRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** The caller, holding one of `roles`, on a program that exists; its query parsed. */
  const programList = async <S extends z.ZodType>(req: FastifyRequest, roles: readonly Role[], schema: S) => {
    ctx.requireRole(await ctx.auth.principalOf(req), roles);
    const { programId } = parse(programParams, req.params, 'path');
    const q = parse(schema, req.query, 'query');
    await ctx.programs.get(programId);
    return { programId, q };
  };

  app.get('/v1/programs/:programId/members', async (req) => {
    const { programId, q } = await programList(req, ['support', 'finance', 'controller'], membersListQuery);
    const window =
      q.expiringWithin !== undefined || q.expiresBefore !== undefined
        ? { within: q.expiringWithin, before: q.expiresBefore }
        : undefined;
    return page(
      'members',
      q,
      (p) => listMembers(ctx.reportPool, programId, { status: q.status, window, ...p }),
      (r) => [window ? r.key_at : NO_TIME, r.member_id],
      toMemberView,
    );
  });

  app.get('/v1/programs/:programId/redemptions', async (req) => {
    const { programId, q } = await programList(
      req,
      ['billing', 'support', 'finance', 'controller'],
      redemptionsListQuery,
    );
    return page(
      'redemptions',
      q,
      (p) => listRedemptions(ctx.reportPool, programId, { from: q.from, to: q.to, status: q.status, ...p }),
      (r) => [r.key_at, r.invoice_id],
      (r) => r.v,
    );
  });

  app.get('/v1/programs/:programId/adjustments', async (req) => {
    const { programId, q } = await programList(req, ['support', 'finance'], adjustmentsListQuery);
    return page(
      'adjustments',
      q,
      (p) => listAdjustments(ctx.reportPool, programId, { status: q.status, kind: q.kind, ...p }),
      (r) => [r.keyAt, r.adjustmentId],
      ({ keyAt: _k, ...a }) => a,
    );
  });

  app.get('/v1/programs/:programId/rule-changes', async (req) => {
    const { programId, q } = await programList(
      req,
      ['program_owner', 'finance', 'legal', 'controller'],
      ruleChangesListQuery,
    );
    return page(
      'ruleChanges',
      q,
      (p) => listRuleChanges(ctx.reportPool, programId, { status: q.status, ...p }),
      (r) => [r.key_at, r.change_id],
      (r) => ({
        programId,
        changeId: r.change_id,
        proposedBy: r.proposed_by,
        proposedAt: r.proposed_at,
        baseVersion: r.base_version,
        effectiveAt: r.effective_at,
        comment: r.comment,
        status: r.status,
        adverse: r.adverse,
        approvals: r.approvals,
        activatesAt: r.activates_at,
        version: r.version,
      }),
    );
  });

  app.get('/v1/programs/:programId/closes', async (req) => {
    const { programId, q } = await programList(req, ['finance', 'controller'], closesListQuery);
    return page(
      'closes',
      q,
      (p) => listCloses(ctx.reportPool, programId, { status: q.status, ...p }),
      (r) => [r.period],
      (r) => ({
        programId,
        period: r.period,
        status: r.status,
        startedBy: r.started_by,
        startedAt: r.started_at,
        override: r.override_rate === null ? null : { rate: r.override_rate, justification: r.override_justification },
        totalCatchUpMinor: r.total_catch_up_minor === null ? null : Number(r.total_catch_up_minor),
        approvedBy: r.approved_by,
        approvedAt: r.approved_at,
        bookedAt: r.booked_at,
        glEntryId: r.gl_entry_id,
      }),
    );
  });

  app.get('/v1/approvals', async (req) => {
    const principal = await ctx.auth.principalOf(req);
    const q = parse(approvalsQuery, req.query, 'query');
    if (q.role !== undefined && !principal.roles.includes(q.role))
      throw new ApiError(403, 'forbidden', `this key does not hold the role ${q.role}`, {
        principal: principal.name,
        role: q.role,
      });
    if (q.programId !== undefined) {
      requireProgram(principal, q.programId);
      await ctx.programs.get(q.programId);
    }
    // a decision is a person's, in a role they hold themselves: admin stands in for none (api/auth.ts
    // requireRole); a service key, or one deciding nothing, gets an empty list (its cursor checked all the same)
    const roles = (q.role !== undefined ? [q.role] : principal.roles).filter((r) => r !== 'admin');
    const decides = principal.kind === 'person' && roles.length > 0;
    return page(
      'approvals',
      q,
      async (p) =>
        decides
          ? approvalInbox(ctx.reportPool, {
              by: principal.name,
              roles,
              programs: q.programId !== undefined ? [q.programId] : principal.programs,
              defaultRuleChangeRoles: DEFAULT_RULE_CHANGE_APPROVERS,
              ...p,
            })
          : [],
      (r) => [r.key_at, r.kind, r.program_id, r.id],
      (r) => ({
        kind: r.kind,
        programId: r.program_id,
        id: r.id,
        awaitingRole: r.awaiting_role,
        requestedBy: r.requested_by,
        requestedAt: r.requested_at,
        ...r.summary,
        links: inboxLinks(r.kind, r.program_id, r.id),
      }),
    );
  });
}

/** Where an inbox item is read, and where its decision is sent. */
function inboxLinks(kind: string, programId: string, id: string): { self: string; decide: string } {
  const program = `/v1/programs/${enc(programId)}`;
  if (kind === 'close') return { self: `${program}/closes/${enc(id)}`, decide: `${program}/closes/${enc(id)}/approve` };
  const self = kind === 'rule_change' ? `${program}/rule-changes/${enc(id)}` : `${program}/adjustments/${enc(id)}`;
  return { self, decide: `${self}/approvals` };
}
