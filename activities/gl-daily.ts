import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { planGlBatch, recordGlBatch, unpostedBatchesThrough, type GlBatch } from '../db/gl-daily';
import { programIds } from '../db/programs';
import { endOfDay } from '../domain/gl-balance';
import { glEntryId } from './redemption';
import type { GlClient } from './services/gl';
import { ServiceError } from './services/http';

/** The most programs one daily run posts. */
export const MAX_PROGRAMS_PER_RUN = 1_000;
/** Who the daily posting's batches are recorded by. */
export const GL_DAILY_ACTOR = 'system:gl-daily';

/** The GL entry id of a program's day: `loyalty:<program>:daily:<YYYY-MM-DD>`. */
export const glDailyEntryId = (programId: string, date: string) => glEntryId(programId, `daily:${date}`);

export interface GlDayResult {
  programId: string;
  date: string;
  entryId: string;
  /** null: the journal entries it carries net to nothing per account (nothing sent to the GL) */
  postedEntryId: string | null;
  journalCount: number;
  lines: GlBatch['lines'];
  /** false: the day's batch existed already (a retry or a second run), nothing new was claimed */
  created: boolean;
}

/**
 * Posts a batch to the GL and records it. The batch's lines are fixed in the database before the
 * GL is called, so every attempt sends one body under one id and key: the GL's replay, or its
 * `entry_exists` for our own id, means an earlier attempt was taken.
 */
export async function postBatch(
  pool: Pool,
  gl: GlClient,
  batch: GlBatch,
  entry: { date: string; description: string },
): Promise<string | null> {
  if (batch.lines.length > 0) {
    try {
      await gl.postEntry(
        { entryId: batch.entryId, date: entry.date, description: entry.description, lines: batch.lines },
        `gl:${batch.entryId}`,
      );
    } catch (e) {
      if (e instanceof ServiceError && e.code === 'entry_exists') {
        // ours: only this batch posts under its id
      } else if (e instanceof ServiceError && !e.retryable) {
        throw ApplicationFailure.nonRetryable(e.message, e.code);
      } else throw e;
    }
  }
  await recordGlBatch(pool, batch.entryId);
  return batch.lines.length > 0 ? batch.entryId : null;
}

/** The daily posting of the subledger to the GL (docs/accounting.md, section 14a). */
export function createGlDailyActivities(deps: { pool: Pool; gl: GlClient }) {
  const { pool, gl } = deps;
  return {
    async listProgramsToPost(): Promise<string[]> {
      return programIds(pool, MAX_PROGRAMS_PER_RUN);
    },

    /**
     * One program's day `date` (UTC): one balanced GL entry dated `date`, one net line per account,
     * of every journal entry dated on or before it that no GL entry carries yet (the saga's
     * redemption journals and the closes' catch-ups excepted: they post their own). Idempotent per
     * program and day: the entry id is the day's, and a day's batch, once fixed, is what every later
     * run of the day sends; a journal entry recorded after it, dated that day or before, goes in the
     * next day's run.
     */
    async postProgramDay(q: { programId: string; date: string }): Promise<GlDayResult> {
      const entryId = glDailyEntryId(q.programId, q.date);
      // an earlier day the GL did not take (its run failed): its entries stay claimed by its batch,
      // so that batch is sent again first, as it was fixed; still refused, it waits for the next
      // run, and the quarter's close fails on it rather than leave it out (activities/close.ts)
      for (const stuck of await unpostedBatchesThrough(pool, q.programId, q.date)) {
        if (stuck.entryId === entryId) continue;
        await postBatch(pool, gl, stuck, {
          date: stuck.businessDate,
          description: `loyalty ${q.programId} daily ${stuck.businessDate} (${stuck.journalCount} journal entries)`,
        }).catch(() => undefined);
      }
      const batch = await planGlBatch(pool, {
        entryId,
        programId: q.programId,
        kind: 'daily',
        businessDate: q.date,
        through: endOfDay(q.date),
        withSagaJournals: false,
        actor: GL_DAILY_ACTOR,
      });
      const postedEntryId = await postBatch(pool, gl, batch, {
        date: q.date,
        description: `loyalty ${q.programId} daily ${q.date} (${batch.journalCount} journal entries)`,
      });
      return {
        programId: q.programId,
        date: q.date,
        entryId,
        postedEntryId,
        journalCount: batch.journalCount,
        lines: batch.lines,
        created: batch.created,
      };
    },
  };
}

export type GlDailyActivities = ReturnType<typeof createGlDailyActivities>;
