import { ApiError } from './errors';

/**
 * Keyset pagination (docs/api.md, "Lists and pagination"): a list's `cursor` is opaque to clients,
 * the base64url of JSON `[list, ...sortKey]`: the list it belongs to and the sort key of the last
 * row of the page it ends. The next page is the rows after that key in the list's stable order, so
 * rows written meanwhile never shift a page (no offsets), and each row is on one page only.
 */
export type CursorKey = Array<string | number>;

/** A page's answer: the rows, and the cursor of the next page (null: this is the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;
/** longer than any key this API writes (ids of 128 characters, times, kinds), far shorter than a URL limit */
export const MAX_CURSOR_LENGTH = 2048;

export function encodeCursor(list: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify([list, ...key]), 'utf8').toString('base64url');
}

const invalid = (list: string, why: string) =>
  new ApiError(400, 'validation_failed', `invalid query: cursor is not one of this list's (${why})`, {
    issues: [{ path: 'cursor', message: `a nextCursor of GET ${list}, as it was given` }],
  });

/** A sort key's parts: an integer, a time as db/lists.ts writes it (UTC, microseconds), a uuid, an id. */
export type CursorPart = 'number' | 'instant' | 'uuid' | 'text';

const INSTANT = /^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** the ids the schemas allow (printable ASCII), and the kinds and periods of the lists' keys */
const TEXT = /^[\x21-\x7e]{1,128}$/;

function partOk(t: CursorPart, v: unknown): boolean {
  if (t === 'number') return typeof v === 'number' && Number.isSafeInteger(v);
  if (typeof v !== 'string') return false;
  if (t === 'uuid') return UUID.test(v);
  if (t === 'text') return TEXT.test(v);
  const m = INSTANT.exec(v);
  if (!m || Number(m[1]) < 1970) return false;
  const ms = `${v.slice(0, 23)}Z`;
  return !Number.isNaN(Date.parse(ms)) && new Date(ms).toISOString() === ms;
}

/**
 * The sort key a cursor of `list` holds, checked against `shape` (one part a key part); anything
 * else (another list's cursor, a forged or truncated one) is 400 validation_failed, before any
 * query.
 */
export function decodeCursor(list: string, cursor: string, shape: readonly CursorPart[]): CursorKey {
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid(list, 'not base64url');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid(list, 'not JSON');
  }
  if (!Array.isArray(parsed) || parsed[0] !== list || parsed.length !== shape.length + 1)
    throw invalid(list, 'another list');
  const key = parsed.slice(1) as unknown[];
  shape.forEach((t, i) => {
    if (!partOk(t, key[i])) throw invalid(list, `part ${i + 1} is not a ${t}`);
  });
  return key as CursorKey;
}

/**
 * The page from `rows` fetched with `limit + 1` (one more than asked: whether a next page exists
 * without another query), and the cursor of its last row.
 */
export function pageOf<R, T>(
  list: string,
  rows: R[],
  limit: number,
  keyOf: (row: R) => CursorKey,
  view: (row: R) => T,
): Page<T> {
  const page = rows.slice(0, limit);
  const more = rows.length > limit && page.length > 0;
  return { items: page.map(view), nextCursor: more ? encodeCursor(list, keyOf(page[page.length - 1]!)) : null };
}
