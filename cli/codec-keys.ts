import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { newKeyFile, parseKeyFile } from '../temporal/codec';

/** npm start's local payload key: made once, kept with the data (mode 0600), reused on every start. */
export function ensureLocalCodecKeys(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(newKeyFile(`local-${new Date().toISOString().slice(0, 10)}`), null, 2) + '\n', {
      mode: 0o600,
    });
  }
  parseKeyFile(readFileSync(path, 'utf8'));
  return path;
}

/**
 * `loyalty codec-key rotate`: a new key becomes the active one; the old ones stay so that existing
 * histories still decrypt. Restart the worker, API and CLI users to pick it up.
 */
export function rotateCodecKey(path: string, keyId: string): string {
  const previous = parseKeyFile(readFileSync(path, 'utf8'));
  if (keyId in previous.keys) throw new Error(`the key file already holds a key ${keyId}`);
  writeFileSync(path, JSON.stringify(newKeyFile(keyId, previous), null, 2) + '\n', { mode: 0o600 });
  return keyId;
}
