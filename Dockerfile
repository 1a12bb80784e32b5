# The Loyalty Ledger image: one image for `loyalty api`, `loyalty worker`, `loyalty migrate` and
# `loyalty simulators` (docker-compose.yml runs each; docs/deploy.md says how).
#
#   docker build -t loyalty-ledger:0.1.0 .
#   docker run --rm loyalty-ledger:0.1.0 --help
#
# Node.js 20.20.2 on Debian 12: the versions the tests and bench/RESULTS.md ran on.
# The console (console/: a static Vite build) needs the dev dependencies, which the image leaves out:
# it is built in a stage of its own and only its files are copied.
FROM node:20.20.2-bookworm-slim AS console
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY console console
COPY api/client api/client
COPY scripts/build-console.js scripts/build-console.js
RUN node scripts/build-console.js

FROM node:20.20.2-bookworm-slim

# NODE_ENV=production: Fastify, pino and npm behave as in production.
# LOYALTY_SKIP_TOOLS=1: the postinstall (scripts/install-tools.js) would otherwise fetch the Temporal
# dev server and test server with pip and Chromium with apt-get, which only `npm start` and the tests
# use; the image talks to a real Temporal cluster.
ENV NODE_ENV=production \
    LOYALTY_SKIP_TOOLS=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

WORKDIR /app

# Dependencies first, in their own layer, so that a code change does not reinstall them. Only
# `dependencies`: tsx is one of them because the project has no build step (TypeScript runs through
# tsx in production as in development); typescript, eslint, fast-check and yaml stay out.
COPY package.json package-lock.json ./
COPY scripts/install-tools.js scripts/install-tools.js
RUN npm ci --omit=dev && npm cache clean --force

COPY . .
COPY --from=console /build/console/dist console/dist

# The workflow bundle, built once here instead of by every worker at start (seconds of CPU and a few
# hundred MiB each, and every replica of one image then runs byte-identical workflow code).
RUN node --import tsx -e " \
      const { bundleWorkflowCode } = require('@temporalio/worker'); \
      const { BUNDLE_OPTIONS } = require('./workers/worker'); \
      bundleWorkflowCode(BUNDLE_OPTIONS).then((b) => require('node:fs').writeFileSync('/app/workflow-bundle.js', b.code)); \
    " && test -s /app/workflow-bundle.js
ENV LOYALTY_WORKFLOW_BUNDLE=/app/workflow-bundle.js

# Where the audit anchors go (LOYALTY_AUDIT_ANCHOR_DIR in docker-compose.yml): a volume mounted here
# starts with this folder's owner, so user node may write it.
RUN mkdir -p /var/lib/loyalty/audit-anchors && chown node:node /var/lib/loyalty/audit-anchors

# tsx compiles each file on first import and caches the result under /tmp, which user node may write.
USER node

# Node itself is PID 1 (no `npm` or tsx CLI wrapper in between), so SIGTERM reaches the process's
# own graceful shutdown.
ENTRYPOINT ["node", "--import", "tsx", "/app/cli/index.ts"]
CMD ["api"]
