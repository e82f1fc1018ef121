// `make up`: starts the local stack in the background (or finds it running) and says how to reach it.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../harness/binaries.ts';
import { tailFile } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';
import { networkSupport } from '../node-agent/network.ts';
import { processAlive, readState, stackDir, type StackState } from './state.ts';

const dir = stackDir();
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
    `  partition        bin/kubectl get meshpartitions -n ${state.partition.namespace} -o wide; members: bin/kubectl get pods -n ${state.partition.namespace} -o wide`,
    ...(state.network.mode === 'netns'
      ? [
          `  network          nodes are network namespaces ${state.nodes.map((_, i) => `mw${(state.network as { block: number }).block}-n${i + 1}`).join(', ')} on ${state.network.cidr}; host ${state.network.hostIP}`,
          `                   kube-proxy (nftables) per node; DNS: CoreDNS behind kube-system/kube-dns ${state.network.nameserver}; e.g. ip netns exec mw${state.network.block}-n1 getent hosts p0-peers.meshwork.svc.cluster.local`,
        ]
      : [`  network          WARNING: loopback pod IPs only (${state.network.reason}): Services have no endpoints, no cluster DNS`]),
    `  etcd             ${state.etcd}`,
    `  MinIO (S3)       ${state.minio.endpoint}  bucket ${state.minio.bucket}  credentials in ${rel(join(state.dir, 'minio-credentials.json'))}`,
    `  faults           npm run fault -- power-off --node ${state.nodes[0]}   (see npm run fault -- help)`,
    `  logs             ${rel(join(state.dir, 'stack.log'))}, ${rel(join(state.dir, 'kubernetes', 'logs'))}/`,
    '',
    'Stop it with: make down (keeps the data for the next make up); remove everything with: make reset',
  ].join('\n');
}

const existing = readState(dir);
if (existing && processAlive(existing.pid)) {
  console.log(describe(existing));
  process.exit(0);
}

const support = networkSupport();
if (!support.ok && process.env.MESHWORK_STACK_NETWORK !== 'loopback') {
  console.log(
    `WARNING: ${support.reason}; starting without real pod networking: pods get loopback addresses, Services have no endpoints and there is no cluster DNS (see docs/local-cluster.md). Run make up as root for networking.`,
  );
}
mkdirSync(dir, { recursive: true });
const logFile = join(dir, 'stack.log');
const out = openSync(logFile, 'a');
const daemon = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'daemon.ts'), dir], {
  cwd: repoRoot,
  detached: true,
  stdio: ['ignore', out, out],
});
closeSync(out);
daemon.unref();
const started = Date.now();
console.log(
  `Starting Meshwork's local stack (etcd, MinIO, control plane, 3 nodes, the operator and a 3-member MeshPartition); log: ${relative(process.cwd(), logFile)}`,
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
