/**
 * Exact grammars of the API's strings, as regular expressions that mean the same in JavaScript (the
 * server's zod schemas) and in other engines reading /openapi.json (a fuzzer in Python, a client's
 * validator): `[0-9]`, never `\d` (Python's takes any script's digits), explicit character classes,
 * no lookarounds. Each admits exactly what the server takes, so a request valid by the spec is never
 * refused for its syntax, and one it refuses is invalid by the spec.
 */

/** A year from 1970 (business times before it are a typo, not history) to 9999. */
const YEAR = '(?:19[7-9][0-9]|[2-9][0-9]{3})';
/** The leap years among them: divisible by 4, centuries only when divisible by 400. */
const LEAP_YEAR =
  '(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)';
const MONTH_DAY =
  '(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))';
/** A real calendar date, YYYY-MM-DD, from 1970-01-01. */
const DATE = `(?:${LEAP_YEAR}-02-29|${YEAR}-${MONTH_DAY})`;
const TIME = '(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?';
// offsets to ±15:59, PostgreSQL's bound (RFC 3339 writes up to 23:59; no zone on Earth is past 14:00)
const OFFSET = '(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])';

export const CALENDAR_DATE_PATTERN = new RegExp(`^${DATE}$`);
/** RFC 3339 with an offset (Z or ±hh:mm to ±15:59), seconds required, up to nanoseconds, its date from 1970. */
export const INSTANT_PATTERN = new RegExp(`^${DATE}T${TIME}${OFFSET}$`);

// ISO 8601 durations of 1 second to 100 years (domain/duration.ts isValidWindow), as a grammar: one
// unit with the whole range, or several units each of 1 to 99 (years 1 to 89), whose sum stays under
// 100 years. A unit of 0 is not written (P0D, P1Y0M are refused: the sum's lower bound is then 1 s).
const ONE_UNIT =
  '(?:(?:100|[1-9][0-9]?)Y|[1-9][0-9]{0,2}M|[1-9][0-9]{0,2}W|[1-9][0-9]{0,3}D|T(?:[1-9][0-9]{0,4}H|[1-9][0-9]{0,5}M|[1-9][0-9]{0,7}S))';
const N = '[1-9][0-9]?';
const Y = '(?:[1-9]|[1-8][0-9])Y';
const MO = `${N}M`;
const W = `${N}W`;
const D = `${N}D`;
const DATE_UNITS = `(?:${Y}(?:${MO})?(?:${W})?(?:${D})?|${MO}(?:${W})?(?:${D})?|${W}(?:${D})?|${D})`;
const TIME_UNITS = `T(?:${N}H(?:${N}M)?(?:${N}S)?|${N}M(?:${N}S)?|${N}S)`;
export const DURATION_PATTERN = new RegExp(`^P(?:${ONE_UNIT}|${DATE_UNITS}(?:${TIME_UNITS})?|${TIME_UNITS})$`);

/** A period: a calendar quarter of a year from 2000 to 2999 (closes, reports). */
export const PERIOD_PATTERN = /^2[0-9]{3}-Q[1-4]$/;

/** Text PostgreSQL can hold: no NUL (the insert would fail with a 500). */
// eslint-disable-next-line no-control-regex -- the NUL is the point: PostgreSQL's text cannot hold one
export const NO_NUL_PATTERN = /^[^\u0000]*$/;

// JavaScript's whitespace (String.prototype.trim), spelled out: other engines' \s differs
const JS_SPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
/** Text with something besides whitespace in it, and no NUL: what `.trim().min(1)` keeps. */
export const NOT_BLANK_PATTERN = new RegExp(`^[^\\u0000]*[^${JS_SPACE}\\u0000][^\\u0000]*$`);
