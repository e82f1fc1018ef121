#!/usr/bin/env bash
# Builds the pinned real infrastructure (Kubernetes control plane, kube-proxy
# and kubectl, etcd, MinIO, Helm, CoreDNS, Jaeger, Prometheus and promtool,
# rclone) from the Go module proxy into bin/, with each binary's real version
# stamped in. A tool whose inputs (go.mod, go.sum, main.go, the shell functions
# that build it, the Go version) are unchanged since its last build is skipped,
# so a second run costs nothing, and a change to one tool's build rebuilds only
# that tool.
#
# Usage: tools/build.sh [kubernetes] [etcd] [minio] [helm] [coredns] [jaeger] [prometheus] [rclone]   (default: all)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bin="${MESHWORK_BIN:-$root/bin}"
stamps="$bin/.stamps"
mkdir -p "$stamps"

export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
# Go's own toolchain switching is not allowed to fetch anything behind our back.
export GOTOOLCHAIN=local

if ! command -v go >/dev/null 2>&1; then
  echo "tools/build.sh: the Go toolchain (go >= 1.26) is needed to build the infrastructure" >&2
  exit 1
fi

# module_version DIR MODULE prints the version of MODULE that DIR's go.mod pins.
module_version() {
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

# module_time DIR MODULE prints the publication time of MODULE's pinned version.
module_time() {
  (cd "$1" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$2")
}

# stamp_of NAME prints a digest of everything that decides what tools/NAME builds.
stamp_of() {
  local dir="$here/$1"
  {
    go version
    cat "$dir/go.mod" "$dir/go.sum"
    # A tool built from a main package of its own (CoreDNS's plugin list, rclone's subset).
    if [ -f "$dir/main.go" ]; then cat "$dir/main.go"; fi
    # The shell that builds it: its own function and the shared ones (not the whole script,
    # so that adding or changing another tool does not rebuild this one).
    declare -f "build_$1" build stamp_of module_version module_time
    echo "$CGO_ENABLED $GOFLAGS"
  } | sha256sum | cut -d' ' -f1
}

# build NAME OUTPUTS... -- go build arguments: builds unless up to date.
build() {
  local name=$1; shift
  local outputs=()
  while [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  shift
  local dir="$here/$name" stamp
  stamp=$(stamp_of "$name")
  local fresh=1
  for out in "${outputs[@]}"; do [ -x "$bin/$out" ] || fresh=0; done
  if [ "$fresh" = 1 ] && [ "$(cat "$stamps/$name" 2>/dev/null)" = "$stamp" ]; then
    echo "tools: $name is up to date (${outputs[*]})"
    return 0
  fi
  echo "tools: building $name (${outputs[*]}) ..."
  local start=$SECONDS
  (cd "$dir" && go build -trimpath "$@")
  echo "$stamp" >"$stamps/$name"
  echo "tools: built $name in $((SECONDS - start))s"
}

build_kubernetes() {
  local dir="$here/kubernetes" v date major minor flags=""
  v=$(module_version "$dir" k8s.io/kubernetes)
  date=$(module_time "$dir" k8s.io/kubernetes)
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  build kubernetes kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl -- \
    -ldflags "-s -w$flags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  local dir="$here/etcd" v
  v=$(module_version "$dir" go.etcd.io/etcd/server/v3)
  # The version itself is a constant of the api module; GitSHA is the only stamp.
  build etcd etcd -- \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$v" \
    -o "$bin/etcd" go.etcd.io/etcd/server/v3
}

build_minio() {
  local dir="$here/minio" v commit time tag
  v=$(module_version "$dir" github.com/minio/minio)
  commit=${v##*-}
  time=$(module_time "$dir" github.com/minio/minio)
  tag="RELEASE.${time//:/-}"
  local p=github.com/minio/minio/cmd
  build minio minio -- \
    -ldflags "-s -w -X $p.Version=$time -X $p.ReleaseTag=$tag -X $p.CommitID=$commit -X $p.ShortCommitID=${commit:0:12} -X $p.CopyrightYear=${time:0:4}" \
    -o "$bin/minio" github.com/minio/minio
}

build_helm() {
  local dir="$here/helm" v kv kmajor kminor
  v=$(module_version "$dir" helm.sh/helm/v3)
  kv=$(module_version "$dir" k8s.io/client-go)
  # Staging modules v0.N.x belong to Kubernetes 1.N.
  kmajor=1; kminor=${kv#v0.}; kminor=${kminor%%.*}
  local flags="-X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=$kmajor -X $pkg.k8sVersionMinor=$kminor"
  done
  build helm helm -- -ldflags "-s -w $flags" -o "$bin/helm" helm.sh/helm/v3/cmd/helm
}

build_coredns() {
  local dir="$here/coredns" v
  v=$(module_version "$dir" github.com/coredns/coredns)
  # CoreDNS's version is a constant of coremain; GitCommit is the only stamp.
  build coredns coredns -- \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=module-$v" \
    -o "$bin/coredns" .
}

build_jaeger() {
  local dir="$here/jaeger" v time
  v=$(module_version "$dir" github.com/jaegertracing/jaeger)
  time=$(module_time "$dir" github.com/jaegertracing/jaeger)
  # cmd/jaeger is the collector + query service + UI in one binary; its
  # version lives in internal/version (commitSHA is the only stamp we lack).
  local p=github.com/jaegertracing/jaeger/internal/version
  build jaeger jaeger -- \
    -ldflags "-s -w -X $p.latestVersion=$v -X $p.commitSHA=module-$v -X $p.date=$time" \
    -o "$bin/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
}

build_prometheus() {
  local dir="$here/prometheus" v version time
  v=$(module_version "$dir" github.com/prometheus/prometheus)
  time=$(module_time "$dir" github.com/prometheus/prometheus)
  # Module v0.MMM.P is Prometheus 3.(MMM-300).P.
  local minor=${v#v0.}; minor=${minor%%.*}
  version="3.$((minor - 300)).${v##*.}"
  # Only Kubernetes discovery (file and HTTP discovery are always in): the other discoveries'
  # SDKs are most of the build. No builtinassets tag: the web UI is not embedded (the HTTP API
  # and /metrics are all the stack and the tests use).
  local p=github.com/prometheus/common/version
  build prometheus prometheus promtool -- \
    -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X $p.Version=$version -X $p.Revision=module-$v -X $p.Branch=HEAD -X $p.BuildUser=meshwork -X $p.BuildDate=${time:0:4}${time:5:2}${time:8:2}-${time:11:8}" \
    -o "$bin/" github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
}

build_rclone() {
  local dir="$here/rclone" v
  v=$(module_version "$dir" github.com/rclone/rclone)
  # Only the backends and commands the tests and benchmarks use (main.go).
  build rclone rclone -- \
    -ldflags "-s -w -X github.com/rclone/rclone/fs.Version=$v" \
    -o "$bin/rclone" .
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd minio helm coredns jaeger prometheus rclone kubernetes)
for t in "${targets[@]}"; do
  case "$t" in
    kubernetes|etcd|minio|helm|coredns|jaeger|prometheus|rclone) "build_$t" ;;
    *) echo "tools/build.sh: unknown tool '$t' (known: kubernetes etcd minio helm coredns jaeger prometheus rclone)" >&2; exit 2 ;;
  esac
done
