import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { correlationClientInterceptor } from './correlation';
import { dataConverter, type TemporalSettings } from './settings';

/** A client (API, CLI, relay) with the settings' TLS and codec. Close the connection when done. */
export async function connectClient(
  s: TemporalSettings,
  o: { connectTimeoutMs?: number } = {},
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({
    address: s.address,
    tls: s.tls,
    ...(o.connectTimeoutMs ? { connectTimeout: o.connectTimeoutMs } : {}),
  });
  const client = new Client({
    connection,
    namespace: s.namespace,
    dataConverter: dataConverter(s),
    interceptors: { workflow: [correlationClientInterceptor] },
  });
  return { client, connection };
}

/** A worker's connection with the settings' TLS. */
export function connectWorker(s: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: s.address, tls: s.tls });
}
