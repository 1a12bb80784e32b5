import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Pool } from 'pg';
import {
  compareWithAnchors,
  signedBytes,
  type AnchorProblem,
  type AnchoredHead,
  type Checkpoint,
  type CurrentChain,
  type SignedCheckpoint,
} from '../domain/audit-anchor';

// Signed checkpoints of the audit chains' heads, written outside the database (docs/audit.md,
// "Anchors"). The key is a file the database never sees: the chains' own hashes are unkeyed, so
// whoever can write the database can recompute them; only a signature made with a key it does not
// hold, kept where it cannot write, shows that what was anchored has not been rewritten since.

/**
 * Where checkpoints go. One append-only log of lines per database. The file store below is the only
 * one implemented; an object store (S3 with object lock, say) would implement the same two calls,
 * one object per checkpoint, written once.
 */
export interface AnchorStore {
  /** where it writes, for messages */
  readonly where: string;
  append(database: string, line: string): Promise<void>;
  /** every line written for this database, oldest first ([] when there is none) */
  read(database: string): Promise<string[]>;
}

/** A directory holding `<database>.jsonl`, one signed checkpoint a line, only ever appended to. */
export function fileAnchorStore(dir: string): AnchorStore {
  const file = (database: string) => join(dir, `${database.replace(/[^A-Za-z0-9_.-]/g, '_')}.jsonl`);
  return {
    where: dir,
    async append(database, line) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await appendFile(file(database), line + '\n', { mode: 0o600, flag: 'a' });
    },
    async read(database) {
      try {
        return (await readFile(file(database), 'utf8')).split('\n').filter((l) => l.trim() !== '');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    },
  };
}

export interface AnchorConfig {
  enabled: boolean;
  dir: string;
  keyFile: string;
}

/**
 * From the environment: LOYALTY_AUDIT_ANCHOR_DIR (default <data folder>/audit-anchors),
 * LOYALTY_AUDIT_ANCHOR_KEY_FILE (default <data folder>/audit-anchor-key.pem), LOYALTY_AUDIT_ANCHORS=off
 * to write none. The data folder is LOYALTY_DATA_DIR, else .data (cli/config.ts).
 */
export function anchorConfigFrom(env: NodeJS.ProcessEnv = process.env): AnchorConfig {
  const dataDir = resolve(env.LOYALTY_DATA_DIR ?? '.data');
  return {
    enabled: env.LOYALTY_AUDIT_ANCHORS !== 'off',
    dir: resolve(env.LOYALTY_AUDIT_ANCHOR_DIR ?? join(dataDir, 'audit-anchors')),
    keyFile: resolve(env.LOYALTY_AUDIT_ANCHOR_KEY_FILE ?? join(dataDir, 'audit-anchor-key.pem')),
  };
}

export interface AnchorKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

function keyFromPem(pem: string): AnchorKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the audit anchor key must be an Ed25519 key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyId(publicKey) };
}

/**
 * The signing key: read from the file, or made there (0600) on first use, as npm start makes the
 * other local secrets; `wx` so two processes starting at once keep one key.
 */
export function loadOrCreateAnchorKey(file: string): AnchorKey {
  try {
    return keyFromPem(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return keyFromPem(readFileSync(file, 'utf8'));
}

/** The key to check signatures with, or null when there is no key file (verify never makes one). */
export function readAnchorKey(file: string): AnchorKey | null {
  try {
    return keyFromPem(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function signCheckpoint(c: Checkpoint, key: AnchorKey): SignedCheckpoint {
  return { checkpoint: c, sig: sign(null, signedBytes(c), key.privateKey).toString('base64') };
}

/** A line's digest: what the close's GL memo carries, so the GL holds a copy of the checkpoint's identity. */
export const lineDigest = (line: string) => createHash('sha256').update(line).digest('hex').slice(0, 16);

async function databaseName(pool: Pool): Promise<string> {
  return (await pool.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
}

/** Every chain's head and row count, in one statement (one snapshot: ll_audit moves a head and adds its row in one transaction). */
async function readHeads(pool: Pool): Promise<AnchoredHead[]> {
  const { rows } = await pool.query<{ chain: number; seq: string; hash: string; rows: string }>(
    `select h.chain, h.seq, h.hash, (select count(*) from audit_log a where a.chain = h.chain and a.seq <= h.seq) as rows
       from audit_chain_heads h order by h.chain`,
  );
  return rows.map((r) => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash, rows: Number(r.rows) }));
}

/** Takes a checkpoint of every chain, signs it and appends it to the store. */
export async function anchorAuditChains(
  pool: Pool,
  o: { store: AnchorStore; key: AnchorKey; label: string; now?: Date },
): Promise<{ signed: SignedCheckpoint; line: string }> {
  const checkpoint: Checkpoint = {
    v: 1,
    database: await databaseName(pool),
    label: o.label,
    at: (o.now ?? new Date()).toISOString(),
    keyId: o.key.keyId,
    chains: await readHeads(pool),
  };
  const signed = signCheckpoint(checkpoint, o.key);
  const line = JSON.stringify(signed);
  await o.store.append(checkpoint.database, line);
  return { signed, line };
}

/**
 * The close's anchor and the text its GL entry's memo carries: chain 16's head (periods, rules,
 * keys) and the checkpoint's digest. Taken once per close: a retry finds the checkpoint written
 * under the close's label and reuses it, so the GL entry's description is the same on every
 * attempt. Null when anchors are off.
 */
export async function closeAnchorMemo(
  pool: Pool,
  programId: string,
  period: string,
  config: AnchorConfig = anchorConfigFrom(),
): Promise<string | null> {
  if (!config.enabled) return null;
  const store = fileAnchorStore(config.dir);
  const label = `close:${programId}:${period}`;
  const key = loadOrCreateAnchorKey(config.keyFile);
  const database = await databaseName(pool);
  let line = (await store.read(database)).find((l) => {
    try {
      return (JSON.parse(l) as SignedCheckpoint).checkpoint.label === label;
    } catch {
      return false;
    }
  });
  line ??= (await anchorAuditChains(pool, { store, key, label })).line;
  const head = (JSON.parse(line) as SignedCheckpoint).checkpoint.chains.find((h) => h.chain === 16);
  return `audit ${head ? `16:${head.seq}:${head.hash}` : '16:0'} anchor:${lineDigest(line)}`;
}

export interface AnchorCheck {
  /** where the anchors were read from */
  where: string;
  database: string;
  /** checkpoints whose signature holds */
  checkpoints: number;
  /** the latest of them */
  latest: string | null;
  badSignatures: Array<{ line: number; reason: string }>;
  problems: AnchorProblem[];
}

function checkSignature(l: string, key: AnchorKey | null, database: string): Checkpoint | string {
  let s: SignedCheckpoint;
  try {
    s = JSON.parse(l) as SignedCheckpoint;
  } catch {
    return 'not JSON';
  }
  if (!s?.checkpoint || typeof s.sig !== 'string') return 'not a signed checkpoint';
  if (key === null) return 'no key file to check it with';
  if (s.checkpoint.keyId !== key.keyId) return `signed by key ${s.checkpoint.keyId}, not ${key.keyId}`;
  if (s.checkpoint.database !== database) return `names database ${s.checkpoint.database}`;
  if (!verify(null, signedBytes(s.checkpoint), key.publicKey, Buffer.from(s.sig, 'base64')))
    return 'signature does not match';
  return s.checkpoint;
}

/** Checks the chains against every anchor of this database (`loyalty verify`). */
export async function checkAuditAnchors(
  pool: Pool,
  o: { store: AnchorStore; key: AnchorKey | null },
): Promise<AnchorCheck> {
  const database = await databaseName(pool);
  const lines = await o.store.read(database);
  const valid: Checkpoint[] = [];
  const badSignatures: AnchorCheck['badSignatures'] = [];
  lines.forEach((l, i) => {
    const r = checkSignature(l, o.key, database);
    if (typeof r === 'string') badSignatures.push({ line: i + 1, reason: r });
    else valid.push(r);
  });
  const { rows: chains } = await pool.query<{ chain: number; head_seq: string | null; rows: string }>(
    `select c.chain, h.seq as head_seq, (select count(*) from audit_log a where a.chain = c.chain) as rows
       from generate_series(0, 16) c(chain) left join audit_chain_heads h on h.chain = c.chain`,
  );
  const current = new Map<number, CurrentChain>(
    chains.map((r) => [r.chain, { headSeq: r.head_seq === null ? null : Number(r.head_seq), rows: Number(r.rows) }]),
  );
  const wanted = valid.flatMap((c) => c.chains.filter((h) => h.seq > 0));
  const { rows: hashes } = await pool.query<{ chain: number; seq: string; hash: string }>(
    `select a.chain, a.seq, a.hash from audit_log a
       join unnest($1::smallint[], $2::bigint[]) w(chain, seq) on a.chain = w.chain and a.seq = w.seq`,
    [wanted.map((h) => h.chain), wanted.map((h) => h.seq)],
  );
  const rowHash = new Map(hashes.map((r) => [`${r.chain}:${Number(r.seq)}`, r.hash]));
  return {
    where: o.store.where,
    database,
    checkpoints: valid.length,
    latest: valid.length > 0 ? valid[valid.length - 1]!.at : null,
    badSignatures,
    problems: compareWithAnchors(valid, current, rowHash),
  };
}

/** The anchor check's findings as verify's violations, one per kind. */
export function anchorViolations(c: AnchorCheck): Array<{ check: string; count: number; sample: unknown[] }> {
  const out: Array<{ check: string; count: number; sample: unknown[] }> = [];
  const add = (check: string, rows: unknown[]) => {
    if (rows.length > 0) out.push({ check, count: rows.length, sample: rows.slice(0, 5) });
  };
  add(
    `every audit anchor's signature holds (${c.where})`,
    c.badSignatures.map((b) => ({ ...b })),
  );
  add(
    'no anchored audit row was rewritten: the row each anchor names still has the anchored hash',
    c.problems.filter((p) => p.problem === 'rewritten'),
  );
  add(
    'no audit chain is shorter than its last anchor (truncated tail)',
    c.problems.filter((p) => p.problem === 'truncated_tail'),
  );
  add(
    'every audit chain an anchor names still exists (deleted chain)',
    c.problems.filter((p) => p.problem === 'deleted_chain'),
  );
  return out;
}
