import type { Pool, PoolClient } from 'pg';
import QueryStream from 'pg-query-stream';
import type { Readable } from 'node:stream';

/**
 * The exports' reads (docs/api.md, "Export"): a program's ledger entries, or its journal lines,
 * whose business time falls in a range of UTC days, as a stream of rows read through a server-side
 * portal (pg-query-stream: node-postgres's own cursor) a batch at a time, only as fast as the
 * reader takes them, so memory stays the same whatever the range holds. Every cell is text (the
 * exact digits of an amount, the API's ISO 8601 times: domain/export-format.ts). The order is
 * business time, then id: reproducible, and an index range (migration 020).
 */

export type ExportKind = 'ledger-entries' | 'journal-lines';

/** How long a reader's early close waits for the server to confirm the portal's close before the connection is discarded instead. */
const PORTAL_CLOSE_WAIT_MS = 5_000;

/** A reader that went away: pipeline's error for a stream closed before its end. */
const isEarlyClose = (err: Error | null) =>
  (err as NodeJS.ErrnoException | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';

/**
 * pg-query-stream's stream, ending at once on an error: its own destroy waits for the server to
 * confirm the portal's close, which a connection that died never sends, and the reply would then
 * hang open (after an error the connection is discarded anyway: openExport). A reader that went
 * away closes the portal (the connection then goes back to the pool), waiting at most
 * PORTAL_CLOSE_WAIT_MS (`stuck`: discarded instead).
 */
class ExportStream extends QueryStream {
  stuck = false;

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (err && !isEarlyClose(err)) return cb(err);
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      this.stuck = true;
      cb(err);
    }, PORTAL_CLOSE_WAIT_MS);
    super._destroy(err as Error, (e?: Error | null) => {
      clearTimeout(timer);
      if (!settled) cb(e ?? err);
    });
  }
}

const SQL: Record<ExportKind, string> = {
  'ledger-entries': `
    select e.entry_id::text, e.member_id, e.type, e.points::text, ll_ts(e.occurred_at), ll_ts(e.recorded_at),
           e.reference, e.actor, e.idempotency_key, e.rule_version::text, e.journal_entry_id::text
      from ledger_entries e
     where e.program_id = $1
       and e.occurred_at >= ($2::date)::timestamp at time zone 'UTC' and e.occurred_at < ($3::date + 1)::timestamp at time zone 'UTC'
     order by e.occurred_at, e.entry_id`,
  'journal-lines': `
    select l.journal_entry_id::text, l.line_no::text, j.kind, ll_ts(j.occurred_at), ll_ts(j.recorded_at),
           j.reference, j.actor, l.account, l.debit_minor::text, l.credit_minor::text, l.cohort
      from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
     where j.program_id = $1
       and j.occurred_at >= ($2::date)::timestamp at time zone 'UTC' and j.occurred_at < ($3::date + 1)::timestamp at time zone 'UTC'
     order by j.occurred_at, j.journal_entry_id, l.line_no`,
};

export interface ExportRange {
  programId: string;
  /** UTC days, both inclusive (YYYY-MM-DD) */
  from: string;
  to: string;
}

export interface ExportOptions {
  /** the whole export's time in the database, from its first row to its last (the pool's own timeout is for one report) */
  timeoutMs: number;
  /** rows fetched from the portal at a time: what the stream holds at most, besides the reader's buffer */
  batchRows: number;
}

/**
 * Opens an export: one connection of `pool`, held until the stream closes, in a read-only
 * transaction whose statement timeout bounds the export. The connection goes back to the pool
 * however the stream ends: at the last row (committed), destroyed by the reader (a client that
 * went away: the portal is closed, rolled back) or on an error (the connection is discarded, not
 * reused in an unknown state). Rows are arrays of text cells.
 */
export async function openExport(pool: Pool, kind: ExportKind, r: ExportRange, o: ExportOptions): Promise<Readable> {
  const client = await pool.connect();
  let released = false;
  // an error on the socket with no query to take it (the server went away between batches) must not crash the process
  const onError = () => undefined;
  client.on('error', onError);
  const release = (err?: Error) => {
    if (released) return;
    released = true;
    client.off('error', onError);
    client.release(err);
  };
  try {
    await client.query('begin read only');
    await client.query(`set local statement_timeout = ${Math.trunc(o.timeoutMs)}`);
    // rows in the index's order from the first one (migration 020), never a sort of the whole range
    // first: the planner costs a portal as if every row were wanted at once, and would read a
    // program's whole year and sort it before sending a byte
    await client.query('set local enable_sort = off');
  } catch (e) {
    release(e as Error);
    throw e;
  }
  const stream = client.query(
    new ExportStream(SQL[kind], [r.programId, r.from, r.to], { rowMode: 'array', batchSize: o.batchRows }),
  );
  let failed: Error | undefined;
  stream.on('error', (e: Error) => {
    if (!isEarlyClose(e)) failed = e;
  });
  stream.once('close', () => {
    if (stream.stuck) failed ??= new Error('the portal did not close');
    void finish(client, stream.readableEnded && !failed, failed, release);
  });
  return stream;
}

/** Ends the export's transaction and gives the connection back (discarded after an error). */
async function finish(
  client: PoolClient,
  complete: boolean,
  failed: Error | undefined,
  release: (err?: Error) => void,
): Promise<void> {
  if (failed) return release(failed);
  try {
    await client.query(complete ? 'commit' : 'rollback');
    release();
  } catch (e) {
    release(e as Error);
  }
}
