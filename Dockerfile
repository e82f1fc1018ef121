# The one Meshwork image: every role (operator, gateway, partition, prober) from the same
# TypeScript sources, run directly by Node 24. The role is the first argument.
# It holds only what runs: production dependencies (`npm ci --omit=dev`) and the product code
# (meshwork.ts, operator/src, dataplane/src and the workspaces contract/ and client/). Tests
# never reach it: .dockerignore leaves `*.test.ts` files and test folders out of the build
# context, so the COPY lines below carry product code only.
FROM node:24-bookworm-slim
WORKDIR /meshwork
# The workspaces' manifests come first: npm ci links @meshwork/contract and @meshwork/client
# from them, and the dependency layer is rebuilt only when a manifest changes.
COPY package.json package-lock.json ./
COPY contract/package.json contract/
COPY client/package.json client/
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY meshwork.ts ./
COPY contract/src contract/src
COPY client/src client/src
COPY operator/src operator/src
COPY dataplane/src dataplane/src
USER 65532:65532
ENTRYPOINT ["node", "meshwork.ts"]
