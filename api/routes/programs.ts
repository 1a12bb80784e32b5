import type { FastifyInstance } from 'fastify';
import { insertProgram, scheduledRuleVersions, type ProgramRow } from '../../db/programs';
import { rethrowAsApiError } from '../../db/errors';
import { currencyDigits } from '../../domain/currency';
import { ApiError } from '../../domain/errors';
import type { ProgramRules } from '../../domain/program';
import { createProgramSchema, programParams } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { idempotencyKey, parse, requestHash } from '../validate';

export function programView(p: ProgramRow) {
  return {
    programId: p.programId,
    name: p.name,
    currency: p.currency,
    currencyDigits: p.currencyDigits,
    ...p.rules,
    activeRuleVersion: { version: p.activeVersion, effectiveAt: p.activeSince.toISOString() },
    createdAt: p.createdAt.toISOString(),
    createdBy: p.createdBy,
  };
}

export function programRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/programs', async (req, reply) => {
    const principal = await ctx.auth.principalOf(req);
    ctx.requireRole(principal, ['admin']);
    const body = parse(createProgramSchema, req.body, 'program');
    const key = idempotencyKey(req);
    const { programId, name, currency, ...rules } = body;
    const client = await ctx.pool.connect();
    try {
      await client.query('begin');
      const prior = (await client.query('select ll_idem_claim($1, $2, $3) as r', ['#programs', key, requestHash('programs', body)])).rows[0].r;
      if (prior) {
        await client.query('commit');
        return reply.status(prior.status).header('Idempotent-Replayed', 'true').send(prior.body);
      }
      const created = await insertProgram(client, {
        programId, name, currency, currencyDigits: currencyDigits(currency), rules: rules as ProgramRules, actor: principal.name,
      });
      if (!created) throw new ApiError(409, 'program_exists', `program ${programId} already exists`, { programId });
      const view = programView((await ctx.programs.fetchWith(client, programId))!);
      await client.query('select ll_idem_store($1, $2, 201, $3)', ['#programs', key, JSON.stringify(view)]);
      await client.query('commit');
      ctx.programs.forget(programId);
      return reply.status(201).send(view);
    } catch (e) {
      await client.query('rollback');
      rethrowAsApiError(e);
    } finally {
      client.release();
    }
  });

  app.get('/v1/programs/:programId', async (req) => {
    await ctx.auth.principalOf(req);
    const { programId } = parse(programParams, req.params, 'path');
    return { ...programView(await ctx.programs.get(programId)), scheduledRuleVersions: await scheduledRuleVersions(ctx.pool, programId) };
  });
}
