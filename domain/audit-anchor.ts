// Audit anchors (docs/audit.md, "Anchors"): a signed checkpoint of every audit chain's head, kept
// outside the database, so someone holding only the database's credentials cannot rewrite,
// truncate or delete a chain and recompute the hashes without `loyalty verify` noticing. Pure
// rules here: what a checkpoint holds, the bytes that are signed, and how a chain is compared
// with its anchors; the key, the store and the database reads are in db/audit-anchors.ts.

/** One chain's head as anchored: its last sequence number and hash, and how many rows it held. */
export interface AnchoredHead {
  chain: number;
  seq: number;
  hash: string;
  rows: number;
}

export interface Checkpoint {
  v: 1;
  /** the database the chains are in (current_database()): one anchor file per database */
  database: string;
  /** why it was taken: `schedule`, `cli:<user>`, `close:<program>:<period>` */
  label: string;
  at: string;
  /** the signing key's fingerprint (sha256 of its public key, 16 hex) */
  keyId: string;
  chains: AnchoredHead[];
}

export interface SignedCheckpoint {
  checkpoint: Checkpoint;
  /** Ed25519 over signedBytes(checkpoint), base64 */
  sig: string;
}

/** The bytes signed: the checkpoint's fields in a fixed order, so a re-serialised line verifies alike. */
export function signedBytes(c: Checkpoint): Buffer {
  return Buffer.from(
    JSON.stringify([
      'loyalty-audit-anchor',
      c.v,
      c.database,
      c.label,
      c.at,
      c.keyId,
      c.chains.map((h) => [h.chain, h.seq, h.hash, h.rows]),
    ]),
    'utf8',
  );
}

/** A chain as the database holds it now: its head (null: no head row) and the rows it has. */
export interface CurrentChain {
  headSeq: number | null;
  rows: number;
}

export type AnchorProblem =
  | { problem: 'deleted_chain'; chain: number; anchoredSeq: number; label: string; at: string }
  | {
      problem: 'truncated_tail';
      chain: number;
      anchoredSeq: number;
      anchoredRows: number;
      headSeq: number | null;
      rows: number;
      label: string;
      at: string;
    }
  | {
      problem: 'rewritten';
      chain: number;
      /** the row the anchor names no longer has the anchored hash: some row at or before it changed */
      anchoredSeq: number;
      anchoredHash: string;
      hash: string;
      /** the last anchored row that still matches (0: none): the change is after it */
      afterSeq: number;
      label: string;
      at: string;
    };

/**
 * Compares the chains with every checkpoint (valid signatures only). `rowHash` holds the current
 * hash of each anchored (chain, seq) that still exists, keyed `chain:seq`. A chain's hash at an
 * anchored row commits to every row before it (each row's hash covers the previous one's), so a
 * row rewritten and all the hashes after it recomputed changes the hash of every later anchor.
 */
export function compareWithAnchors(
  checkpoints: Checkpoint[],
  current: Map<number, CurrentChain>,
  rowHash: Map<string, string>,
): AnchorProblem[] {
  const problems: AnchorProblem[] = [];
  const byChain = new Map<number, Array<AnchoredHead & { label: string; at: string }>>();
  for (const c of checkpoints)
    for (const h of c.chains) {
      if (h.seq === 0) continue; // an empty chain anchors nothing
      const list = byChain.get(h.chain) ?? [];
      list.push({ ...h, label: c.label, at: c.at });
      byChain.set(h.chain, list);
    }
  for (const [chain, anchors] of [...byChain].sort((a, b) => a[0] - b[0])) {
    anchors.sort((a, b) => a.seq - b.seq);
    const last = anchors[anchors.length - 1]!;
    const now = current.get(chain) ?? { headSeq: null, rows: 0 };
    if (now.rows === 0 && (now.headSeq ?? 0) === 0) {
      problems.push({ problem: 'deleted_chain', chain, anchoredSeq: last.seq, label: last.label, at: last.at });
      continue;
    }
    const lastRows = Math.max(...anchors.map((a) => a.rows));
    if ((now.headSeq ?? 0) < last.seq || now.rows < lastRows || !rowHash.has(`${chain}:${last.seq}`)) {
      problems.push({
        problem: 'truncated_tail',
        chain,
        anchoredSeq: last.seq,
        anchoredRows: lastRows,
        headSeq: now.headSeq,
        rows: now.rows,
        label: last.label,
        at: last.at,
      });
    }
    // the first anchored row whose hash moved: the rewrite is after the anchor before it
    let afterSeq = 0;
    for (const a of anchors) {
      const h = rowHash.get(`${chain}:${a.seq}`);
      if (h === undefined) continue; // missing: the truncation above names it
      if (h === a.hash) {
        afterSeq = a.seq;
        continue;
      }
      problems.push({
        problem: 'rewritten',
        chain,
        anchoredSeq: a.seq,
        anchoredHash: a.hash,
        hash: h,
        afterSeq,
        label: a.label,
        at: a.at,
      });
      break;
    }
  }
  return problems;
}
