import { ApiError } from './errors';

/**
 * Keyset pagination (docs/api.md, "Lists and pagination"): a list's `cursor` is the sort key of the
 * last row of the page it ends, written `<list>.<part>.<part>…`: the list it belongs to, then each
 * part of the key (a time as microseconds since 1970, a uuid, an id with every character outside
 * `A-Z a-z 0-9 _ -` written `~XX`, its hex code). The next page is the rows after that key in the
 * list's stable order, so rows written meanwhile never shift a page (no offsets), and each row is
 * on one page only.
 *
 * The grammar is regular on purpose (cursorPattern): the pattern in each list's query schema, so in
 * /openapi.json, admits exactly the cursors the list takes. Any string it admits is a position in
 * the list (a cursor made by hand starts after that key), and any it does not is 400
 * validation_failed, so a client, or a fuzzer, reading the spec is never refused a request the spec
 * allows.
 */
export type CursorKey = string[];

/** A page's answer: the rows, and the cursor of the next page (null: this is the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** A sort key's parts: a time as db/lists.ts writes it (UTC, microseconds), a uuid, an id. */
export type CursorPart = 'instant' | 'uuid' | 'text';

/**
 * Each list's sort key. `members` orders by id alone, or, with a deadline window, by deadline then
 * id: one key for both (without a window, its time is 1970 and not read), so either cursor is a
 * position in either order.
 */
export const LIST_KEYS = {
  members: ['instant', 'text'],
  redemptions: ['instant', 'text'],
  adjustments: ['instant', 'uuid'],
  ruleChanges: ['instant', 'text'],
  closes: ['text'],
  approvals: ['instant', 'text', 'text', 'text'],
  programs: ['text'],
} as const satisfies Record<string, readonly CursorPart[]>;
export type ListName = keyof typeof LIST_KEYS;

/** The time of a key that has none (the members list without a deadline window). */
export const NO_TIME = '1970-01-01T00:00:00.000000Z';

// [0-9], not \d: the patterns are read by other engines (a Python fuzzer's \d takes any script's digits)
const PART_PATTERNS: Record<CursorPart, string> = {
  // microseconds since 1970, at most 16 digits: up to the year 2286
  instant: '[0-9]{1,16}',
  uuid: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  // 1 to 128 printable ASCII characters (the ids' alphabet), escaped as ~21..~7E
  text: '(?:[A-Za-z0-9_-]|~(?:2[1-9A-F]|[3-6][0-9A-F]|7[0-9A-E])){1,128}',
};

/** The cursors of `list`, exactly: what its query schema (domain/schemas.ts) admits. */
export function cursorPattern(list: ListName): RegExp {
  return new RegExp(`^${list}\\.${LIST_KEYS[list].map((t) => PART_PATTERNS[t]).join('\\.')}$`);
}

const SAFE = /^[A-Za-z0-9_-]$/;

function encodePart(t: CursorPart, v: string): string {
  if (t === 'uuid') return v;
  if (t === 'text')
    return [...v].map((c) => (SAFE.test(c) ? c : `~${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('');
  // '2026-11-22T10:05:00.123456Z': milliseconds from Date, the last three digits as they are
  const ms = Date.parse(`${v.slice(0, 23)}Z`);
  return (BigInt(ms) * 1000n + BigInt(v.slice(23, 26))).toString();
}

function decodePart(t: CursorPart, v: string): string {
  if (t === 'uuid') return v;
  if (t === 'text') return v.replace(/~([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const micros = BigInt(v);
  const iso = new Date(Number(micros / 1000n)).toISOString();
  return `${iso.slice(0, 23)}${(micros % 1000n).toString().padStart(3, '0')}Z`;
}

export function encodeCursor(list: ListName, key: CursorKey): string {
  const shape = LIST_KEYS[list];
  if (key.length !== shape.length) throw new Error(`a ${list} cursor has ${shape.length} parts, not ${key.length}`);
  return [list, ...shape.map((t, i) => encodePart(t, key[i]!))].join('.');
}

/**
 * The sort key a cursor of `list` holds. The query schema has checked it against cursorPattern
 * (this checks again, for callers without one): anything else is 400 validation_failed, before
 * any query.
 */
export function decodeCursor(list: ListName, cursor: string): CursorKey {
  if (!cursorPattern(list).test(cursor))
    throw new ApiError(400, 'validation_failed', `invalid query: cursor is not one of this list's`, {
      issues: [{ path: 'cursor', message: `a nextCursor of GET ${list}, as it was given` }],
    });
  const parts = cursor.split('.').slice(1);
  return LIST_KEYS[list].map((t, i) => decodePart(t, parts[i]!));
}

/**
 * The page from `rows` fetched with `limit + 1` (one more than asked: whether a next page exists
 * without another query), and the cursor of its last row.
 */
export function pageOf<R, T>(
  list: ListName,
  rows: R[],
  limit: number,
  keyOf: (row: R) => CursorKey,
  view: (row: R) => T,
): Page<T> {
  const page = rows.slice(0, limit);
  const more = rows.length > limit && page.length > 0;
  return { items: page.map(view), nextCursor: more ? encodeCursor(list, keyOf(page[page.length - 1]!)) : null };
}
