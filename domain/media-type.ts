/**
 * Content negotiation on the Accept header (RFC 9110 §12.5.1) for the routes that answer in more
 * than one format (the exports: docs/api.md, "Export"). Hand-written rather than a library: the
 * packages at hand negotiate tokens (encodings, languages) and not media ranges with `type/*`.
 */

/** One media range of an Accept header: `type/subtype` (either may be `*`) and its weight. */
interface Range {
  type: string;
  subtype: string;
  q: number;
}

/** The longest Accept header read; a longer one is refused as a whole (never a 500, never a slow parse). */
export const MAX_ACCEPT_LENGTH = 2000;

function ranges(header: string): Range[] {
  const out: Range[] = [];
  for (const part of header.split(',')) {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const [type, subtype, ...rest] = range.split('/');
    if (!type || !subtype || rest.length) continue; // not a media range: ignored, as RFC 9110 allows
    let q = 1;
    for (const p of params) {
      const m = /^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    out.push({ type, subtype, q });
  }
  return out;
}

/** How well `range` matches `offered` (type/subtype): 2 exact, 1 type/*, 0 *\/*, -1 not at all. */
function specificity(range: Range, offered: string): number {
  const [type, subtype] = offered.split('/');
  if (range.type === type && range.subtype === subtype) return 2;
  if (range.type === type && range.subtype === '*') return 1;
  if (range.type === '*' && range.subtype === '*') return 0;
  return -1;
}

/**
 * The offered type the header prefers, or null when it accepts none of them (406). `offered` is in
 * the server's order of preference: the first wins a tie, and an absent or empty header gets it.
 * Each offered type takes the weight of the most specific range that matches it (`text/csv;q=0`
 * refuses CSV even beside `*\/*`).
 */
export function negotiate<T extends string>(header: string | undefined, offered: readonly T[]): T | null {
  if (header === undefined || header.trim() === '') return offered[0] ?? null;
  if (header.length > MAX_ACCEPT_LENGTH) return null;
  const rs = ranges(header);
  let best: T | null = null;
  let bestQ = 0;
  for (const type of offered) {
    let q = 0;
    let spec = -1;
    for (const r of rs) {
      const s = specificity(r, type);
      if (s > spec) {
        spec = s;
        q = r.q;
      }
    }
    if (q > bestQ) {
      best = type;
      bestQ = q;
    }
  }
  return best;
}
