import { readFileSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './codec';
import { modulePath } from './module-path';

/** The failure converter's module, for workers and workflow bundles (which load it by path). */
export const FAILURE_CONVERTER_PATH = modulePath(__dirname, 'failure-converter');

export interface TlsSettings {
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
  serverNameOverride?: string;
}

/** How to reach Temporal and how payloads are encoded, read from the environment once. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  /** undefined: plain TCP */
  tls?: TlsSettings;
  /** undefined: payloads in clear */
  codec?: AesGcmCodec;
}

/**
 * TLS is on when TEMPORAL_TLS=on or any TEMPORAL_TLS_* file is given; mTLS when both the client
 * certificate and its key are. LOYALTY_CODEC_KEYS_FILE turns payload encryption on, and with it the
 * refusal of payloads in clear (LOYALTY_CODEC_ACCEPT_PLAINTEXT=on lifts it, for a migration only).
 */
export function temporalSettings(
  target: { address: string; namespace: string },
  env: NodeJS.ProcessEnv = process.env,
): TemporalSettings {
  const file = (name: string) => (env[name] ? readFileSync(env[name]!) : undefined);
  const ca = file('TEMPORAL_TLS_CA_FILE');
  const crt = file('TEMPORAL_TLS_CERT_FILE');
  const key = file('TEMPORAL_TLS_KEY_FILE');
  if (Boolean(crt) !== Boolean(key))
    throw new Error('TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together (mTLS)');
  const tlsOn = env.TEMPORAL_TLS === 'on' || Boolean(ca || crt || env.TEMPORAL_TLS_SERVER_NAME);
  return {
    address: target.address,
    namespace: target.namespace,
    tls: tlsOn
      ? {
          ...(ca ? { serverRootCACertificate: ca } : {}),
          ...(crt && key ? { clientCertPair: { crt, key } } : {}),
          ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
        }
      : undefined,
    codec: env.LOYALTY_CODEC_KEYS_FILE
      ? AesGcmCodec.fromFile(env.LOYALTY_CODEC_KEYS_FILE, {
          acceptPlaintext: env.LOYALTY_CODEC_ACCEPT_PLAINTEXT === 'on',
        })
      : undefined,
  };
}

/** The data converter of clients and workers: the codec when there is one; failures always encoded. */
export function dataConverter(s: Pick<TemporalSettings, 'codec'>): DataConverter {
  return { failureConverterPath: FAILURE_CONVERTER_PATH, payloadCodecs: s.codec ? [s.codec] : [] };
}
