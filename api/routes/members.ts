import type { FastifyInstance } from 'fastify';
import { getAdjustment } from '../../db/adjustments';
import { callWriteFunction, getLedger, getMember } from '../../db/ledger';
import { DEFAULT_ADJUSTMENT_APPROVAL_WINDOW, DEFAULT_ADJUSTMENT_THRESHOLD_POINTS } from '../../domain/program';
import { notFound } from '../../domain/errors';
import { ledgerQuery, memberParams, mergeSchema } from '../../domain/schemas';
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';
import { idempotencyKey, requestHash, scopedIdempotencyKey } from '../validate';
import { sendWriteResult } from './accruals';
import { startAdjustmentApproval } from './adjustments';

const READERS = ['billing', 'support', 'finance', 'controller'] as const;

/** A member as the API shows it (db/ledger.ts MemberView). */
export const memberView = z
  .object({
    memberId: z.string(),
    balance: z.number(),
    held: z.number(),
    available: z.number(),
    expiresAt: z.string().nullable(),
    status: z.enum(['active', 'merged', 'archived']),
    mergedInto: z.string().nullable(),
  })
  .loose();
const memberAnswer = memberView.extend({ workflowId: z.string() });
const ledgerAnswer = z
  .object({ memberId: z.string(), entries: z.array(z.object({}).loose()), nextAfter: z.string().nullable() })
  .loose();
const mergeAnswer = z
  .object({ memberId: z.string(), intoMemberId: z.string(), status: z.string() })
  .loose()
  .describe('merged (201), or waiting for finance above the approval threshold (202, with workflowId and poll)');

export function memberRoutes(app: FastifyInstance, ctx: ApiContext): void {
  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/members/:memberId',
      summary: 'A member: balance, held, available, deadline, status',
      roles: READERS,
      params: memberParams,
      responses: { 200: memberAnswer },
    },
    async (req) => {
      const { programId, memberId } = req.params;
      await ctx.programs.get(programId);
      const m = await getMember(ctx.pool, programId, memberId);
      if (!m) throw notFound('member', { programId, memberId });
      return { ...m, workflowId: `member:${programId}:${memberId}` };
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId/members/:memberId/ledger',
      summary: "A member's ledger, oldest first (?after=&limit=)",
      roles: READERS,
      params: memberParams,
      query: ledgerQuery,
      responses: { 200: ledgerAnswer },
    },
    async (req) => {
      const { programId, memberId } = req.params;
      const q = req.query;
      await ctx.programs.get(programId);
      if (!(await getMember(ctx.pool, programId, memberId))) throw notFound('member', { programId, memberId });
      const limit = q.limit ?? 1000;
      const entries = await getLedger(ctx.pool, programId, memberId, { afterEntryId: q.after ?? '0', limit });
      return { memberId, entries, nextAfter: entries.length === limit ? entries[entries.length - 1]!.entryId : null };
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs/:programId/members/:memberId/merge',
      summary: 'Merge a duplicate member into a survivor',
      roles: ['support'],
      params: memberParams,
      body: mergeSchema,
      idempotency: 'required',
      responses: { 201: mergeAnswer, 202: mergeAnswer },
      errors: {
        409: ['idempotency_key_reused', 'member_not_active', 'member_has_holds'],
        422: ['merge_into_self'],
      },
    },
    async (req, reply, principal) => {
      const { programId, memberId } = req.params;
      const body = req.body;
      const key = idempotencyKey(req);
      await ctx.programs.get(programId);
      const result = await callWriteFunction(ctx.pool, 'll_merge', {
        programId,
        memberId,
        intoMemberId: body.intoMemberId,
        occurredAt: new Date().toISOString(),
        idemKey: scopedIdempotencyKey(principal.name, 'merge', key), // docs/access.md, "Idempotency"
        requestHash: requestHash(`merge:${memberId}`, body),
        actor: principal.name,
        defaultThresholdPoints: DEFAULT_ADJUSTMENT_THRESHOLD_POINTS,
        defaultWindow: DEFAULT_ADJUSTMENT_APPROVAL_WINDOW,
      });
      // more points than the approval gate lets through: nothing moved, the merge waits for finance
      // on the adjustment approval path (started again on a replay while it still waits)
      if (result.status === 202) {
        const id = (result.body as { adjustmentId: string }).adjustmentId;
        const workflowId = await startAdjustmentApproval(
          ctx,
          (await getAdjustment(ctx.pool, programId, id))!,
          'a merge above the threshold',
        );
        result.body = { ...(result.body as object), workflowId, poll: `/v1/programs/${programId}/adjustments/${id}` };
      }
      return sendWriteResult(reply, result);
    },
  );
}
