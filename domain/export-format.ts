import { csvCell } from './close-report';

/**
 * The exports' rows as NDJSON or CSV lines (docs/api.md, "Export"). A row arrives as text cells
 * (db/exports.ts casts every column to text), so that amounts stay the exact digits PostgreSQL
 * holds (a bigint never passes through a JavaScript number) and times are the API's ISO 8601 UTC.
 */

/** How a column is written in JSON: `id` a string (bigint ids, as the API's views write them), `int` a number, `text` a string. CSV writes all three as text. */
export type ColumnKind = 'id' | 'int' | 'text';
export interface Column {
  name: string;
  kind: ColumnKind;
  /** may be null: JSON null, an empty CSV field */
  nullable?: true;
}

export const EXPORT_FORMATS = ['application/x-ndjson', 'text/csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const LEDGER_ENTRY_COLUMNS: readonly Column[] = [
  { name: 'entryId', kind: 'id' },
  { name: 'memberId', kind: 'text' },
  { name: 'type', kind: 'text' },
  { name: 'points', kind: 'int' },
  { name: 'occurredAt', kind: 'text' },
  { name: 'recordedAt', kind: 'text' },
  { name: 'reference', kind: 'text' },
  { name: 'actor', kind: 'text' },
  { name: 'idempotencyKey', kind: 'text' },
  { name: 'ruleVersion', kind: 'int', nullable: true },
  { name: 'journalEntryId', kind: 'id', nullable: true },
];

export const JOURNAL_LINE_COLUMNS: readonly Column[] = [
  { name: 'journalEntryId', kind: 'id' },
  { name: 'lineNo', kind: 'int' },
  { name: 'kind', kind: 'text' },
  { name: 'occurredAt', kind: 'text' },
  { name: 'recordedAt', kind: 'text' },
  { name: 'reference', kind: 'text' },
  { name: 'actor', kind: 'text' },
  { name: 'account', kind: 'text' },
  { name: 'debitMinor', kind: 'int' },
  { name: 'creditMinor', kind: 'int' },
  { name: 'cohort', kind: 'text', nullable: true },
];

/** A row's cells, in its columns' order: text, or null. */
export type Cells = ReadonlyArray<string | null>;

/**
 * A CSV record, CRLF-terminated as RFC 4180 says. Its fields are the close report's cells
 * (domain/close-report.ts csvCell, the one home of the rule): quoted when they hold a comma, a
 * quote or a line break, quotes doubled, null empty, and text a spreadsheet would run as a formula
 * (`=`, `+`, `-`, `@` first, a signed number aside) with a leading `'`.
 */
export const csvLine = (cells: Cells): string => cells.map(csvCell).join(',') + '\r\n';

/** The header record: the columns' names, the same as the NDJSON keys. */
export const csvHeader = (columns: readonly Column[]): string => csvLine(columns.map((c) => c.name));

/** A function writing one row as a JSON object on one line; the keys' text is made once. */
export function jsonLineWriter(columns: readonly Column[]): (cells: Cells) => string {
  const keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`);
  const kinds = columns.map((c) => c.kind);
  return (cells) => {
    let line = '';
    for (let i = 0; i < keys.length; i++) {
      const v = cells[i] ?? null;
      // an int is PostgreSQL's own digits (db/exports.ts casts it to text): exact at any size
      line += keys[i] + (v === null ? 'null' : kinds[i] === 'int' ? v : JSON.stringify(v));
    }
    return line + '}\n';
  };
}

/** The row writer of a format, and what the body starts with (CSV: its header). */
export function formatter(
  format: ExportFormat,
  columns: readonly Column[],
): { head: string; line: (c: Cells) => string } {
  return format === 'text/csv'
    ? { head: csvHeader(columns), line: csvLine }
    : { head: '', line: jsonLineWriter(columns) };
}
