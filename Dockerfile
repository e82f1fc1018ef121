# The one Meshwork image: every role (operator, gateway, partition, prober) from the same
# TypeScript sources, run directly by Node 24. The role is the first argument.
FROM node:24-bookworm-slim
WORKDIR /meshwork
COPY package.json package-lock.json ./
# The workspaces' manifests, so npm links @meshwork/contract (which every role imports).
COPY contract/package.json contract/
COPY client/package.json client/
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY meshwork.ts ./
COPY contract/src contract/src
COPY operator/src operator/src
COPY dataplane/src dataplane/src
USER 65532:65532
ENTRYPOINT ["node", "meshwork.ts"]
