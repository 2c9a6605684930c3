# syntax=docker/dockerfile:1
# flashsale's image: every role (`api`, `worker`, `psp`, `migrate`, …) is this image with another
# command; deploy/compose.yaml runs them. Node runs the TypeScript itself (type stripping): no
# build step. Checked by test/deploy.test.ts (lint), not built there: images cannot be pulled on
# this project's machines (docs/deployment.md).

# ---- dependencies: production only, from the lockfile ----
FROM node:26-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM node:26-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    LOG_FORMAT=json
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node src ./src
# The image's own user (uid 1000, from the node image), never root; /data holds the simulator's journal.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000 3001 3002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "bin/healthcheck.js"]
ENTRYPOINT ["node", "bin/flashsale.js"]
CMD ["api"]
