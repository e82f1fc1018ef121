# The one Meshwork image, for machines with Docker: every role (operator, gateway, partition,
# prober) from the same TypeScript sources, run directly by Node 24. The role is the first
# argument. `make image` builds the image that is released and tested, without a container
# engine (image/build.sh, ADR 35); this file gives an equivalent one: the same Node version,
# production dependencies only, the product sources under /app, user 65532, the same
# entrypoint, environment, stop signal and labels. It differs in the base (Node's official
# slim image, which has a shell and npm, where make image has only Node and the libraries it
# links against), is not reproducible, and carries no SBOM or licence list.
# Tests never reach it: .dockerignore leaves `*.test.ts` files and test folders out of the
# build context, so the COPY lines below carry product code only.
FROM node:24.21.0-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/meshwork/meshwork
WORKDIR /app
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
ENV NODE_ENV=production HOME=/home/nonroot
RUN groupadd --gid 65532 nonroot && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
LABEL org.opencontainers.image.title="Meshwork" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/meshwork.ts"]
