import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';

/** The metadata of an encrypted payload: what it is and which key opens it. */
export const ENCODING = 'binary/encrypted';
export const KEY_ID_FIELD = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** One payload, encrypted; larger ones are refused rather than shipped (Temporal's own limit is 2 MiB). */
const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

const keyFileSchema = z
  .object({
    active: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    keys: z.record(
      z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
      z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'a key is 32 bytes, base64'),
    ),
  })
  .strict()
  .refine((f) => f.active in f.keys, { message: 'the active key must be one of the keys' });
export type CodecKeyFile = z.infer<typeof keyFileSchema>;

/**
 * AES-256-GCM over each whole payload (its metadata too, so even the encoding is hidden), with a
 * fresh 96-bit IV per payload and the key id in the clear metadata. New payloads use the active
 * key; any key in the set opens old ones, which is how keys rotate: add a key, make it active,
 * keep the old one until no open history needs it.
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;

  /**
   * `acceptPlaintext`: decode passes a payload that is not encrypted through, as it did before
   * issue 14 (item 1). Off by default: with encryption on, every payload our clients and workers
   * write is encrypted, so a clear one was written by something without the key (the `temporal` CLI,
   * the UI, a script on the frontend) and could carry any input, update or signal; the worker then
   * fails the workflow task instead of running it. Temporal's own fields that are not ours to encrypt
   * (search attributes, headers) never reach the codec. Only for a migration to encryption, while
   * histories written in clear are still open (LOYALTY_CODEC_ACCEPT_PLAINTEXT=on, temporal/settings.ts).
   */
  constructor(
    private readonly activeKeyId: string,
    keys: Record<string, Buffer>,
    private readonly o: { acceptPlaintext?: boolean } = {},
  ) {
    this.keys = new Map(Object.entries(keys));
    for (const [id, key] of this.keys)
      if (key.length !== 32) throw new Error(`codec key ${id} is ${key.length} bytes, not 32`);
    if (!this.keys.has(activeKeyId)) throw new Error(`the active codec key ${activeKeyId} is not loaded`);
  }

  static fromFile(path: string, o: { acceptPlaintext?: boolean } = {}): AesGcmCodec {
    const f = keyFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    return new AesGcmCodec(
      f.active,
      Object.fromEntries(Object.entries(f.keys).map(([id, k]) => [id, Buffer.from(k, 'base64')])),
      o,
    );
  }

  /**
   * The same codec, passing clear payloads through on decode: for showing a history (the codec
   * server of the UI and CLI, api/routes/codec.ts), where a payload in clear is shown, not run, and
   * the UI also asks for payloads the core SDK writes in clear (its markers' details).
   */
  forDisplay(): AesGcmCodec {
    return new AesGcmCodec(this.activeKeyId, Object.fromEntries(this.keys), { acceptPlaintext: true });
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.activeKeyId)!;
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      if (plain.length > MAX_PAYLOAD_BYTES)
        throw new Error(`payload of ${plain.length} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCODING), [KEY_ID_FIELD]: Buffer.from(this.activeKeyId) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (Buffer.from(p.metadata?.encoding ?? []).toString() !== ENCODING) {
        if (this.o.acceptPlaintext) return p;
        throw new PlaintextPayloadError();
      }
      const keyId = Buffer.from(p.metadata?.[KEY_ID_FIELD] ?? []).toString();
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`no codec key ${JSON.stringify(keyId)} is loaded: cannot decrypt`);
      const data = Buffer.from(p.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted payload too short');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/** A payload in clear reached a codec that requires encryption. */
export class PlaintextPayloadError extends Error {
  constructor() {
    super('payload is not encrypted: refused (encryption is on; see temporal/codec.ts)');
    this.name = 'PlaintextPayloadError';
  }
}

/** A new key file with one random key (npm start's local key; `loyalty codec-key` for rotation). */
export function newKeyFile(keyId: string, previous?: CodecKeyFile): CodecKeyFile {
  return { active: keyId, keys: { ...(previous?.keys ?? {}), [keyId]: randomBytes(32).toString('base64') } };
}

export function parseKeyFile(text: string): CodecKeyFile {
  return keyFileSchema.parse(JSON.parse(text));
}
