import { existsSync } from 'node:fs';
import { join } from 'node:path';

const CANDIDATES = ['.ts', '.js', '/index.ts', '/index.js'];

/**
 * The file of a module that Temporal loads by path (workflow code, interceptors, the failure
 * converter: webpack bundles them, the worker requires them). Not `require.resolve`: under tsx it
 * finds `.ts` files only because tsx hooks Node's resolver, and vitest's module runner has no such
 * hook, so the same code would resolve in `npm start` and fail in the tests.
 */
export function modulePath(dir: string, relative: string): string {
  const base = join(dir, relative);
  for (const ext of CANDIDATES) if (existsSync(base + ext)) return base + ext;
  throw new Error(`no module ${relative} in ${dir} (looked for ${CANDIDATES.join(', ')})`);
}
