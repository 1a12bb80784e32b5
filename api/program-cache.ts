import type { Pool, PoolClient } from 'pg';
import { getProgram, type ProgramRow } from '../db/programs';
import { notFound } from '../domain/errors';

const TTL_MS = 1_000;

/** Programs change rarely and every accrual needs its rules: keep them for a second. */
export class ProgramCache {
  private entries = new Map<string, { row: ProgramRow | null; at: number }>();

  constructor(private readonly pool: Pool) {}

  async get(programId: string): Promise<ProgramRow> {
    const now = Date.now();
    let e = this.entries.get(programId);
    if (!e || now - e.at > TTL_MS) {
      e = { row: await getProgram(this.pool, programId), at: now };
      this.entries.set(programId, e);
    }
    if (!e.row) throw notFound('program', { programId });
    return e.row;
  }

  /** Reads through a transaction's client (sees its uncommitted writes), bypassing the cache. */
  fetchWith(client: PoolClient, programId: string): Promise<ProgramRow | null> {
    return getProgram(client, programId);
  }

  forget(programId: string): void {
    this.entries.delete(programId);
  }
}
