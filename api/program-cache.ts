import type { Pool, PoolClient } from 'pg';
import { getProgram, type ProgramRow } from '../db/programs';
import { notFound } from '../domain/errors';

const TTL_MS = 1_000;
/** At most this many programs are kept (the least recently used goes first): an unknown id is cached too, and ids are the caller's. */
export const PROGRAM_CACHE_MAX_ENTRIES = 1_000;

/**
 * A map of at most `max` entries that forgets the least recently used one first (a Map keeps
 * insertion order: a read moves the entry to the end, an insert past the bound drops the first).
 */
export class BoundedLru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`an LRU holds at least one entry, not ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }
}

/** Programs change rarely and every accrual needs its rules: keep them for a second, at most PROGRAM_CACHE_MAX_ENTRIES of them. */
export class ProgramCache {
  private entries: BoundedLru<string, { row: ProgramRow | null; at: number }>;

  constructor(
    private readonly pool: Pool,
    maxEntries: number = PROGRAM_CACHE_MAX_ENTRIES,
  ) {
    this.entries = new BoundedLru(maxEntries);
  }

  /** How many programs are held now (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

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
