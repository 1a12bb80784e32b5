import { pipeline, Transform } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Role } from '../../db/keys';
import { openExport, type ExportKind } from '../../db/exports';
import { ApiError } from '../../domain/errors';
import {
  EXPORT_FORMATS,
  JOURNAL_LINE_COLUMNS,
  LEDGER_ENTRY_COLUMNS,
  formatter,
  type Cells,
  type Column,
} from '../../domain/export-format';
import { negotiate } from '../../domain/media-type';
import { daysInRange, exportQuery, MAX_EXPORT_DAYS, programParams } from '../../domain/schemas';
import type { ApiContext } from '../context';
import { route } from '../route';

/** Who may export a program's books: finance and the controller (and admin), as for the liability and the closes. */
export const EXPORT_ROLES: readonly Role[] = ['finance', 'controller'];

/**
 * Exports at a time in one API process: each holds a report-pool connection for as long as it
 * streams (the pool has 4: cli/api-server.ts API_REPORT_POOL), so two always leave the reports some.
 */
export const MAX_CONCURRENT_EXPORTS = 2;
/** One export's time in the database, first row to last (a statement timeout of its own transaction). */
export const EXPORT_TIMEOUT_MS = 15 * 60_000;
/** Rows fetched from the server-side portal at a time. */
export const EXPORT_BATCH_ROWS = 1000;
/** Lines are sent in chunks of about this many characters (one write per row would be a million syscalls). */
const CHUNK_CHARS = 64 * 1024;

const COLUMNS: Record<ExportKind, readonly Column[]> = {
  'ledger-entries': LEDGER_ENTRY_COLUMNS,
  'journal-lines': JOURNAL_LINE_COLUMNS,
};

/** Rows (arrays of text cells) to the body's text, in chunks; its backpressure is the reply's. */
function lines(head: string, line: (c: Cells) => string): Transform {
  let buf = head;
  return new Transform({
    writableObjectMode: true,
    writableHighWaterMark: EXPORT_BATCH_ROWS,
    transform(row: Cells, _enc, done) {
      buf += line(row);
      if (buf.length < CHUNK_CHARS) return done();
      const out = buf;
      buf = '';
      done(null, out);
    },
    flush(done) {
      done(null, buf);
    },
  });
}

/**
 * Streaming exports of a program's ledger entries and journal lines by business date, as NDJSON or
 * CSV by the Accept header (docs/api.md, "Export"). Read on the report pool, one connection an
 * export, in constant memory: the database sends a batch only when the client has taken the last.
 * A failure after the first byte aborts the connection (no clean end of the chunked body), so a
 * truncated export is never mistaken for a whole one.
 */
export function exportRoutes(app: FastifyInstance, ctx: ApiContext): void {
  let running = 0;
  for (const kind of ['ledger-entries', 'journal-lines'] as const) {
    route(
      app,
      {
        method: 'GET',
        url: `/v1/programs/:programId/exports/${kind}`,
        summary: SUMMARIES[kind],
        roles: EXPORT_ROLES,
        params: programParams,
        query: exportQuery,
        responses: {
          200: {
            content: { 'application/x-ndjson': z.string(), 'text/csv': z.string() },
            description: 'the rows, streamed: NDJSON (the default) or CSV by the Accept header',
          },
        },
        errors: { 406: ['not_acceptable'], 422: ['export_range_too_long'], 429: ['too_many_exports'] },
      },
      async (req, reply) => {
        const { programId } = req.params;
        const q = req.query;
        const format = negotiate(req.headers.accept, EXPORT_FORMATS);
        if (format === null)
          throw new ApiError(406, 'not_acceptable', `send Accept: ${EXPORT_FORMATS.join(' or ')}`, {
            offered: EXPORT_FORMATS,
          });
        await ctx.programs.get(programId);
        if (daysInRange(q.from, q.to) > MAX_EXPORT_DAYS)
          throw new ApiError(
            422,
            'export_range_too_long',
            `a range of at most ${MAX_EXPORT_DAYS} days (from and to both included); export a longer one in parts`,
            { from: q.from, to: q.to, maxDays: MAX_EXPORT_DAYS },
          );
        // set only once the answer is the export: an error's JSON must not carry them
        const exportHeaders = () =>
          reply
            .type(
              format === 'text/csv' ? 'text/csv; charset=utf-8; header=present' : 'application/x-ndjson; charset=utf-8',
            )
            .header('cache-control', 'no-store')
            .header('vary', 'accept')
            .header(
              'content-disposition',
              `attachment; filename="${programId}-${kind}-${q.from}-${q.to}.${format === 'text/csv' ? 'csv' : 'ndjson'}"`,
            );
        // HEAD (Fastify answers it for every GET): the headers only, no read (Fastify would drain a whole export)
        if (req.method === 'HEAD') return exportHeaders().send();
        if (running >= MAX_CONCURRENT_EXPORTS)
          throw new ApiError(
            429,
            'too_many_exports',
            `at most ${MAX_CONCURRENT_EXPORTS} exports run at a time; retry`,
            {
              retryAfterSeconds: 5,
            },
          );
        running++;
        let rows;
        try {
          rows = await openExport(
            ctx.reportPool,
            kind,
            { programId, from: q.from, to: q.to },
            { timeoutMs: EXPORT_TIMEOUT_MS, batchRows: EXPORT_BATCH_ROWS },
          );
        } catch (e) {
          running--;
          throw e;
        }
        const { head, line } = formatter(format, COLUMNS[kind]);
        // pipeline: the reply closing early (the client went away) or an error destroys both, and the
        // database's stream closes its portal and gives the connection back (db/exports.ts)
        const body = pipeline(rows, lines(head, line), (err) => {
          running--;
          if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') req.log.warn({ err }, `export ${kind} failed`);
        });
        return exportHeaders().send(body);
      },
    );
  }
}

const SUMMARIES = {
  'ledger-entries':
    'Export the ledger entries of a range of business dates (?from=&to= UTC dates, both inclusive, at most 366 days), by occurredAt then entryId, streamed as NDJSON (Accept: application/x-ndjson, the default) or CSV (text/csv)',
  'journal-lines':
    "Export the journal lines of the journal entries of a range of business dates (?from=&to= as above), by the entry's occurredAt, journalEntryId, lineNo, streamed as NDJSON or CSV",
} as const;
