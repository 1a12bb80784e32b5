import type { FastifyInstance } from 'fastify';
import { insertProgram, scheduledRuleVersions, type ProgramRow } from '../../db/programs';
import { rethrowAsApiError } from '../../db/errors';
import { claimIdempotencyKey, storeIdempotentResponse, type StoredResponse } from '../../db/idempotency';
import { inTransaction } from '../../db/tx';
import { currencyDigits } from '../../domain/currency';
import { ApiError } from '../../domain/errors';
import { MATERIAL_RIGHT_JUDGMENT_MESSAGE, withMaterialRightJudgment, type ProgramRules } from '../../domain/program';
import { createProgramSchema, programParams } from '../../domain/schemas';
import { requireProgram } from '../auth';
import type { ApiContext } from '../context';
import { idempotencyKey, parse, requestHash, scopedIdempotencyKey, withClientKey } from '../validate';

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
    // scoped by principal and route (docs/access.md, "Idempotency")
    const stored = scopedIdempotencyKey(principal.name, 'programs', key);
    const { programId, name, currency, ...given } = body;
    requireProgram(principal, programId);
    // the cost method only with the recorded judgment that the points give no material right
    const rules = withMaterialRightJudgment(given as ProgramRules, principal.name, new Date());
    if (!rules)
      throw new ApiError(422, 'material_right_judgment_required', MATERIAL_RIGHT_JUDGMENT_MESSAGE, {
        field: 'accounting.notMaterialRight',
      });
    let outcome: { replay: StoredResponse } | { view: ReturnType<typeof programView> };
    try {
      outcome = await withClientKey(key, () =>
        inTransaction(ctx.pool, async (client) => {
          const prior = await claimIdempotencyKey(client, '#programs', stored, requestHash('programs', body));
          if (prior) return { replay: prior };
          const created = await insertProgram(client, {
            programId,
            name,
            currency,
            currencyDigits: currencyDigits(currency),
            rules,
            actor: principal.name,
          });
          if (!created) throw new ApiError(409, 'program_exists', `program ${programId} already exists`, { programId });
          const view = programView((await ctx.programs.fetchWith(client, programId))!);
          await storeIdempotentResponse(client, '#programs', stored, 201, view);
          return { view };
        }),
      );
    } catch (e) {
      rethrowAsApiError(e);
    }
    if ('replay' in outcome)
      return reply.status(outcome.replay.status).header('Idempotent-Replayed', 'true').send(outcome.replay.body);
    ctx.programs.forget(programId);
    return reply.status(201).send(outcome.view);
  });

  app.get('/v1/programs/:programId', async (req) => {
    await ctx.auth.principalOf(req);
    const { programId } = parse(programParams, req.params, 'path');
    return {
      ...programView(await ctx.programs.get(programId)),
      scheduledRuleVersions: await scheduledRuleVersions(ctx.pool, programId),
    };
  });
}
