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

  constructor(
    private readonly activeKeyId: string,
    keys: Record<string, Buffer>,
  ) {
    this.keys = new Map(Object.entries(keys));
    for (const [id, key] of this.keys)
      if (key.length !== 32) throw new Error(`codec key ${id} is ${key.length} bytes, not 32`);
    if (!this.keys.has(activeKeyId)) throw new Error(`the active codec key ${activeKeyId} is not loaded`);
  }

  static fromFile(path: string): AesGcmCodec {
    const f = keyFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    return new AesGcmCodec(
      f.active,
      Object.fromEntries(Object.entries(f.keys).map(([id, k]) => [id, Buffer.from(k, 'base64')])),
    );
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
      if (Buffer.from(p.metadata?.encoding ?? []).toString() !== ENCODING) return p;
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

/** A new key file with one random key (npm start's local key; `loyalty codec-key` for rotation). */
export function newKeyFile(keyId: string, previous?: CodecKeyFile): CodecKeyFile {
  return { active: keyId, keys: { ...(previous?.keys ?? {}), [keyId]: randomBytes(32).toString('base64') } };
}

export function parseKeyFile(text: string): CodecKeyFile {
  return keyFileSchema.parse(JSON.parse(text));
}
