// `make up`: starts the local stack in the background (or finds it running) and says how to reach it.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../harness/binaries.ts';
import { tailFile } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';
import { networkSupport } from '../node-agent/network.ts';
import { describeJaeger } from './jaeger.ts';
import { processAlive, readState, stackDir, stackImageEnv, type StackImage, type StackState } from './state.ts';

const dir = stackDir();
// `--image <oci layout>:<tag>` (make up IMAGE=1): the pods run from that image's root filesystem.
const imageFlag = process.argv.indexOf('--image');
const imageRef = imageFlag === -1 ? undefined : process.argv[imageFlag + 1];
const timeoutMs = Number(process.env.MESHWORK_UP_TIMEOUT_MS ?? 420_000);

function describe(state: StackState): string {
  const rel = (p: string): string => relative(process.cwd(), p) || '.';
  return [
    `Meshwork's local stack is up (pid ${state.pid}, ${state.nodes.length} nodes: ${state.nodes.join(', ')}).`,
    '',
    `  Kubernetes API   ${state.apiServer}`,
    `  kubeconfig       export KUBECONFIG=${rel(state.kubeconfig)}`,
    `                   bin/kubectl get nodes`,
    `  operator         Helm release meshwork in meshwork-system (bin/helm --kubeconfig ... status meshwork -n meshwork-system)`,
    ...(state.mesh.gateway
      ? [
          `  gateway          ${state.mesh.gateway}   (the one address of the API: ${state.mesh.gateway}/v1/...)`,
          `  admin token      bin/kubectl get secret ${state.mesh.name}-admin -n ${state.mesh.namespace} -o jsonpath={.data.token} | base64 -d`,
        ]
      : []),
    `  Mesh             bin/kubectl get meshes,meshpartitions -n ${state.mesh.namespace} -o wide; pods: bin/kubectl get pods -n ${state.mesh.namespace} -o wide`,
    ...(state.network.mode === 'netns'
      ? [
          `  network          nodes are network namespaces ${state.nodes.map((_, i) => `mw${(state.network as { block: number }).block}-n${i + 1}`).join(', ')} on ${state.network.cidr}; host ${state.network.hostIP}`,
          `                   kube-proxy (nftables) per node; DNS: CoreDNS behind kube-system/kube-dns ${state.network.nameserver}; e.g. ip netns exec mw${state.network.block}-n1 getent hosts ${state.partitions.names[0]}-peers.${state.mesh.namespace}.svc.cluster.local`,
        ]
      : [`  network          WARNING: loopback pod IPs only (${state.network.reason}): Services have no endpoints, no cluster DNS`]),
    state.image
      ? `  image            pods run ${state.image.ref} (${state.image.digest}) from its root filesystem ${rel(state.image.rootfs)}`
      : `  image            pods run the work tree's sources (make up IMAGE=1 runs them from the built image)`,
    `  etcd             ${state.etcd}`,
    `  MinIO (S3)       ${state.minio.endpoint}  bucket ${state.minio.bucket}  credentials in ${rel(join(state.dir, 'minio-credentials.json'))}`,
    ...(state.prometheus
      ? [
          `  Prometheus       ${state.prometheus}  (every Meshwork pod, 5 s; its HTTP API, no web UI: ${state.prometheus}/api/v1/query?query=up; dashboards: charts/meshwork/dashboards, docs/operations.md)`,
        ]
      : []),
    ...describeJaeger(state),
    `  faults           npm run fault -- power-off --node ${state.nodes[0]}   (see npm run fault -- help)`,
    `  logs             ${rel(join(state.dir, 'stack.log'))}, ${rel(join(state.dir, 'kubernetes', 'logs'))}/`,
    '',
    'Stop it with: make down (keeps the data for the next make up); remove everything with: make reset',
  ].join('\n');
}

const existing = readState(dir);
if (existing && processAlive(existing.pid)) {
  console.log(describe(existing));
  if ((existing.image !== undefined) !== (imageRef !== undefined))
    console.log(
      `\nNOTE: the running stack's pods run ${existing.image ? 'from the image' : "the work tree's sources"}; make down, then make up${imageRef ? ' IMAGE=1' : ''} to change that.`,
    );
  process.exit(0);
}

/** Unpacks the image into the stack's directory with umoci (replacing an earlier unpack). */
function unpackImage(ref: string): StackImage {
  const colon = ref.lastIndexOf(':');
  if (colon <= 0) throw new Error(`--image wants <oci layout directory>:<tag>, not ${ref}`);
  const layout = ref.slice(0, colon);
  const tag = ref.slice(colon + 1);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const manifest = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!manifest) throw new Error(`the OCI layout ${layout} has no image tagged ${tag}: run make image`);
  const bundle = join(dir, 'image');
  rmSync(bundle, { recursive: true, force: true });
  execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { ref: `meshwork/meshwork:${tag}`, digest: manifest.digest, rootfs: join(bundle, 'rootfs') };
}

const support = networkSupport();
if (!support.ok && process.env.MESHWORK_STACK_NETWORK !== 'loopback') {
  console.log(
    `WARNING: ${support.reason}; starting without real pod networking: pods get loopback addresses, Services have no endpoints and there is no cluster DNS (see docs/local-cluster.md). Run make up as root for networking.`,
  );
}
mkdirSync(dir, { recursive: true });
let image: StackImage | undefined;
if (imageRef !== undefined) {
  try {
    image = unpackImage(imageRef);
  } catch (err) {
    console.error(`Cannot run the stack from the image: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  console.log(
    `Pods will run ${image.ref} (${image.digest}) from its root filesystem, unpacked at ${relative(process.cwd(), image.rootfs)}.`,
  );
}
const logFile = join(dir, 'stack.log');
const out = openSync(logFile, 'a');
const daemon = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'daemon.ts'), dir], {
  cwd: repoRoot,
  detached: true,
  stdio: ['ignore', out, out],
  env: { ...process.env, ...(image ? { [stackImageEnv]: JSON.stringify(image) } : {}) },
});
closeSync(out);
daemon.unref();
const started = Date.now();
console.log(
  `Starting Meshwork's local stack (etcd, MinIO, control plane, 3 nodes, the operator and a Mesh of two 2-member partitions and a gateway); log: ${relative(process.cwd(), logFile)}`,
);
const progress = setInterval(() => process.stdout.write(`  ... ${Math.round((Date.now() - started) / 1000)} s\n`), 10_000);
try {
  const state = await waitFor(
    () => {
      const s = readState(dir);
      return s?.ready && s.pid === daemon.pid ? s : undefined;
    },
    {
      description: 'the local stack to come up',
      timeoutMs,
      intervalMs: 250,
      abortIf: () =>
        daemon.exitCode !== null || !processAlive(daemon.pid ?? -1)
          ? `the stack exited; last lines of its log:\n${tailFile(logFile, 30)}`
          : undefined,
    },
  );
  clearInterval(progress);
  console.log(`Up in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
  console.log(describe(state));
} catch (err) {
  clearInterval(progress);
  console.error(err instanceof Error ? err.message : String(err));
  try {
    if (daemon.pid) process.kill(daemon.pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
  process.exit(1);
}
