import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  listAdjustments,
  listCloses,
  listPrograms,
  listMembers,
  listRedemptions,
  listRuleChanges,
  approvalInbox,
} from '../../db/lists';
import { toMemberView } from '../../db/ledger';
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
  programsListQuery,
  redemptionsListQuery,
  ruleChangesListQuery,
} from '../../domain/schemas';
import type { ApiContext } from '../context';
import { requireProgram } from '../auth';
import { route, type Access } from '../route';
import { memberView } from './members';

/** A page of a list (domain/cursor.ts Page): its items and the cursor of the next page (null: the last). */
const pageOf_ = (item: z.ZodType) => z.object({ items: z.array(item), nextCursor: z.string().nullable() }).loose();
const anyItem = z.object({}).loose();

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
  /** A program's list: the roles and the query schema declared, the program found (404 else) before the page. */
  const programList = <Q extends z.ZodType>(
    url: string,
    summary: string,
    roles: Access,
    query: Q,
    item: z.ZodType,
    list: (programId: string, q: z.output<Q>) => Promise<unknown>,
  ) =>
    route(
      app,
      { method: 'GET', url, summary, roles, params: programParams, query, responses: { 200: pageOf_(item) } },
      async (req) => {
        const { programId } = req.params;
        await ctx.programs.get(programId);
        return list(programId, req.query as z.output<Q>);
      },
    );

  programList(
    '/v1/programs/:programId/members',
    'Members by id, or with points by deadline (?status=&expiringWithin=P30D&expiresBefore=&limit=&cursor=)',
    ['support', 'finance', 'controller'],
    membersListQuery,
    memberView,
    (programId, q) => {
      // both bounds: the earlier one (db/lists.ts)
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
    },
  );

  programList(
    '/v1/programs/:programId/redemptions',
    'Redemptions by business time (?from=&to= UTC dates, &status=&limit=&cursor=)',
    ['billing', 'support', 'finance', 'controller'],
    redemptionsListQuery,
    anyItem,
    (programId, q) => {
      return page(
        'redemptions',
        q,
        (p) => listRedemptions(ctx.reportPool, programId, { from: q.from, to: q.to, status: q.status, ...p }),
        (r) => [r.key_at, r.invoice_id],
        (r) => r.v,
      );
    },
  );

  programList(
    '/v1/programs/:programId/adjustments',
    'Manual adjustments and merges by request time (?status=&kind=&limit=&cursor=)',
    ['support', 'finance'],
    adjustmentsListQuery,
    anyItem,
    (programId, q) => {
      return page(
        'adjustments',
        q,
        (p) => listAdjustments(ctx.reportPool, programId, { status: q.status, kind: q.kind, ...p }),
        (r) => [r.keyAt, r.adjustmentId],
        ({ keyAt: _k, ...a }) => a,
      );
    },
  );

  programList(
    '/v1/programs/:programId/rule-changes',
    'Rule changes by proposal time (?status=&limit=&cursor=)',
    ['program_owner', 'finance', 'legal', 'controller'],
    ruleChangesListQuery,
    anyItem,
    (programId, q) => {
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
    },
  );

  programList(
    '/v1/programs/:programId/closes',
    'Closes by period (?status=&limit=&cursor=)',
    ['finance', 'controller'],
    closesListQuery,
    anyItem,
    (programId, q) => {
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
          override:
            r.override_rate === null ? null : { rate: r.override_rate, justification: r.override_justification },
          totalCatchUpMinor: r.total_catch_up_minor === null ? null : Number(r.total_catch_up_minor),
          approvedBy: r.approved_by,
          approvedAt: r.approved_at,
          bookedAt: r.booked_at,
          glEntryId: r.gl_entry_id,
        }),
      );
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/approvals',
      summary:
        "The approval inbox: closes, adjustments, merges and rule changes awaiting a role the caller holds (?role=&programId=&limit=&cursor=), across the key's programs, the caller's own requests excluded",
      roles: 'any',
      query: approvalsQuery,
      responses: { 200: pageOf_(anyItem) },
      errors: { 404: ['not_found'] },
    },
    async (req, _reply, principal) => {
      const q = req.query;
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
    },
  );
}

const programItem = z.object({
  programId: z.string(),
  name: z.string(),
  currency: z.string(),
  currencyDigits: z.number().int(),
  activeRuleVersion: z
    .number()
    .int()
    .describe('the rule version in force now (its rules: GET /v1/programs/{programId})'),
  createdAt: z.string(),
});

/** The programs a key may reach, by id: a key scoped to programs sees those, any other every program. */
export function programListRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs',
      summary: "The programs the caller's key may reach, by id (?limit=&cursor=)",
      roles: 'any',
      query: programsListQuery,
      responses: { 200: pageOf_(programItem) },
    },
    async (req, _reply, principal) =>
      page(
        'programs',
        req.query,
        (p) => listPrograms(ctx.reportPool, { programs: principal.programs, ...p }),
        (r) => [r.program_id],
        (r) => ({
          programId: r.program_id,
          name: r.name,
          currency: r.currency,
          currencyDigits: r.currency_digits,
          activeRuleVersion: r.version,
          createdAt: r.created_at,
        }),
      ),
  );
}

/** Where an inbox item is read, and where its decision is sent. */
function inboxLinks(kind: string, programId: string, id: string): { self: string; decide: string } {
  const program = `/v1/programs/${enc(programId)}`;
  if (kind === 'close') return { self: `${program}/closes/${enc(id)}`, decide: `${program}/closes/${enc(id)}/approve` };
  const self = kind === 'rule_change' ? `${program}/rule-changes/${enc(id)}` : `${program}/adjustments/${enc(id)}`;
  return { self, decide: `${self}/approvals` };
}
