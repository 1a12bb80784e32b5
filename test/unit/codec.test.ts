import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'vitest';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmCodec, ENCODING, KEY_ID_FIELD, newKeyFile, PlaintextPayloadError } from '../../temporal/codec';

// The payload codec: AES-256-GCM per payload, the key id in clear metadata, rotation by adding keys.
const payload = (v: unknown) => defaultPayloadConverter.toPayload(v) as Payload;
const value = (p: Payload) => defaultPayloadConverter.fromPayload(p);
const codecOf = (file: ReturnType<typeof newKeyFile>) =>
  new AesGcmCodec(
    file.active,
    Object.fromEntries(Object.entries(file.keys).map(([id, k]) => [id, Buffer.from(k, 'base64')])),
  );

test('encrypts each payload whole: nothing of the value or its encoding in clear; decodes back exactly', async () => {
  const codec = codecOf(newKeyFile('k1'));
  const input = { memberId: 'm-secret-1', amountMinor: 123_456 };
  const [enc] = await codec.encode([payload(input)]);
  assert.equal(Buffer.from(enc!.metadata!.encoding!).toString(), ENCODING);
  assert.equal(Buffer.from(enc!.metadata![KEY_ID_FIELD]!).toString(), 'k1');
  const bytes = Buffer.from(enc!.data!);
  for (const clear of ['m-secret-1', '123456', 'memberId', 'json/plain'])
    assert.equal(bytes.includes(clear), false, clear);
  assert.deepEqual(value((await codec.decode([enc!]))[0]!), input);
  const [again] = await codec.encode([payload(input)]);
  assert.notDeepEqual(Buffer.from(again!.data!), bytes, 'a fresh IV each time');
});

test('rotation: a new active key encrypts, the old one still opens old payloads; a dropped key cannot', async () => {
  const v1 = newKeyFile('k1');
  const old = await codecOf(v1).encode([payload('before rotation')]);
  const v2 = newKeyFile('k2', v1);
  const rotated = codecOf(v2);
  const [fresh] = await rotated.encode([payload('after rotation')]);
  assert.equal(Buffer.from(fresh!.metadata![KEY_ID_FIELD]!).toString(), 'k2');
  assert.equal(value((await rotated.decode(old))[0]!), 'before rotation');
  const onlyK2 = new AesGcmCodec('k2', { k2: Buffer.from(v2.keys.k2!, 'base64') });
  await assert.rejects(onlyK2.decode(old), /no codec key "k1"/);
});

test('a tampered payload, a wrong key or a short one is refused; a clear payload too, unless plaintext is accepted', async () => {
  const codec = codecOf(newKeyFile('k1'));
  const [enc] = await codec.encode([payload({ a: 1 })]);
  const flipped = Buffer.from(enc!.data!);
  flipped[20]! ^= 1;
  await assert.rejects(codec.decode([{ ...enc!, data: flipped }]));
  const impostor = new AesGcmCodec('k1', { k1: randomBytes(32) });
  await assert.rejects(impostor.decode([enc!]));
  await assert.rejects(codec.decode([{ ...enc!, data: Buffer.alloc(8) }]), /too short/);
  // with encryption on, a payload in clear was written by something without the key (issue 14, item 1)
  const clear = payload('plain');
  await assert.rejects(codec.decode([clear]), PlaintextPayloadError);
  await assert.rejects(codec.decode([enc!, clear]), /not encrypted/, 'one in clear refuses the batch');
  assert.deepEqual(await codec.forDisplay().decode([clear]), [clear], 'shown, for the codec server');
  const migrating = new AesGcmCodec('k1', { k1: randomBytes(32) }, { acceptPlaintext: true });
  assert.deepEqual(await migrating.decode([clear]), [clear], 'LOYALTY_CODEC_ACCEPT_PLAINTEXT=on');
  assert.throws(() => new AesGcmCodec('k1', { k1: randomBytes(16) }), /16 bytes, not 32/);
  assert.throws(() => new AesGcmCodec('k9', { k1: randomBytes(32) }), /active codec key k9/);
});
