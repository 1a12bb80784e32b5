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
import { z } from 'zod';
import type { ApiContext } from '../context';
import { route } from '../route';
import { idempotencyKey, requestHash, scopedIdempotencyKey, withClientKey } from '../validate';

const programAnswer = z
  .object({
    programId: z.string(),
    name: z.string(),
    currency: z.string(),
    currencyDigits: z.number(),
    activeRuleVersion: z.object({ version: z.number(), effectiveAt: z.string() }),
    createdAt: z.string(),
    createdBy: z.string(),
  })
  .loose()
  .describe('the program and the rules of its active version');

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
  route(
    app,
    {
      method: 'POST',
      url: '/v1/programs',
      summary: 'Create a program (rule version 1)',
      roles: ['admin'],
      body: createProgramSchema,
      idempotency: 'required',
      responses: { 201: programAnswer },
      errors: {
        409: ['idempotency_key_reused', 'program_exists'],
        422: ['material_right_judgment_required', 'amount_out_of_range'],
      },
    },
    async (req, reply, principal) => {
      const body = req.body;
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
            if (!created)
              throw new ApiError(409, 'program_exists', `program ${programId} already exists`, { programId });
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
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/v1/programs/:programId',
      summary: 'A program with its active rule version',
      roles: 'any',
      params: programParams,
      responses: { 200: programAnswer.extend({ scheduledRuleVersions: z.array(z.object({}).loose()) }) },
    },
    async (req) => {
      const { programId } = req.params;
      return {
        ...programView(await ctx.programs.get(programId)),
        scheduledRuleVersions: await scheduledRuleVersions(ctx.pool, programId),
      };
    },
  );
}
