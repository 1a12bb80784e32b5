import type { FastifyInstance } from 'fastify';
import { getAdjustment } from '../../db/adjustments';
import { callWriteFunction, getLedger, getMember } from '../../db/ledger';
import { DEFAULT_ADJUSTMENT_APPROVAL_WINDOW, DEFAULT_ADJUSTMENT_THRESHOLD_POINTS } from '../../domain/program';
import { notFound } from '../../domain/errors';
import { ledgerQuery, memberParams, mergeSchema } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { idempotencyKey, parse, requestHash, scopedIdempotencyKey } from '../validate';
import { sendWriteResult } from './accruals';
import { startAdjustmentApproval } from './adjustments';

const READERS = ['billing', 'support', 'finance', 'controller'] as const;

export function memberRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/programs/:programId/members/:memberId', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), READERS);
    const { programId, memberId } = parse(memberParams, req.params, 'path');
    await ctx.programs.get(programId);
    const m = await getMember(ctx.pool, programId, memberId);
    if (!m) throw notFound('member', { programId, memberId });
    return { ...m, workflowId: `member:${programId}:${memberId}` };
  });

  app.get('/v1/programs/:programId/members/:memberId/ledger', async (req) => {
    ctx.requireRole(await ctx.auth.principalOf(req), READERS);
    const { programId, memberId } = parse(memberParams, req.params, 'path');
    const q = parse(ledgerQuery, req.query, 'query');
    await ctx.programs.get(programId);
    if (!(await getMember(ctx.pool, programId, memberId))) throw notFound('member', { programId, memberId });
    const limit = q.limit ?? 1000;
    const entries = await getLedger(ctx.pool, programId, memberId, { afterEntryId: q.after ?? '0', limit });
    return { memberId, entries, nextAfter: entries.length === limit ? entries[entries.length - 1]!.entryId : null };
  });

  app.post('/v1/programs/:programId/members/:memberId/merge', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['support']);
    const { programId, memberId } = parse(memberParams, req.params, 'path');
    const body = parse(mergeSchema, req.body, 'merge');
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
  });
}
