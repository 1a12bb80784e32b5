// Builds the console (console/, Vite) into console/dist, which the API serves at /console/. Run by
// `npm install` (postinstall) and `npm run console:build`. An install without dev dependencies
// (the Docker image's `npm ci --omit=dev`) has no Vite: it skips, and the image builds the console
// in a stage of its own (Dockerfile).
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
let vite;
try {
  vite = join(require.resolve('vite/package.json', { paths: [root] }), '..', 'bin', 'vite.js');
} catch {
  console.log('vite is not installed (no dev dependencies): the console is not built; /console/ will say so');
  process.exit(0);
}
const run = spawnSync(process.execPath, [vite, 'build', join(root, 'console')], { stdio: 'inherit', cwd: root });
process.exit(run.status ?? 1);
