// The local stack's supervisor, started in the background by `make up`: etcd, MinIO, a
// Kubernetes control plane and the node agent (as root with real networking: a bridge, a
// network namespace and kube-proxy per node, and CoreDNS; ADR 27), kept running until SIGTERM
// (`make down`). Addresses and ports stay the same from one start to the next (settings.json),
// so the cluster's stored objects keep pointing at the right servers.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startControlPlane } from '../harness/controlplane.ts';
import { mustRun } from '../harness/commands.ts';
import { reaperPid } from '../harness/process.ts';
import { clusterDnsIP, kubeDnsManifest, startCoreDns } from '../harness/coredns.ts';
import { startEtcd } from '../harness/etcd.ts';
import { startMinio } from '../harness/minio.ts';
import { freePorts } from '../harness/ports.ts';
import { NodeAgent, imageRootfsImages } from '../node-agent/agent.ts';
import { startFaultServer } from '../node-agent/fault-server.ts';
import { createBridge, freeNetworkBlock, networkSupport, planNetwork, removeNetwork, type NetworkPlan } from '../node-agent/network.ts';
import { startStackPrometheus } from './prometheus.ts';
import { jaegerPorts, startStackJaeger } from './jaeger.ts';
import {
  applySampleMesh,
  gatewayUrl,
  installOperator,
  sampleMesh,
  sampleNamespace,
  samplePartitions,
  waitForMeshReady,
} from './meshwork.ts';
import {
  readSettings,
  settingsFile,
  stackDir,
  stackImageEnv,
  stateFile,
  type StackImage,
  type StackSettings,
  type StackState,
} from './state.ts';

const dir = process.argv[2] ?? stackDir();
const image = process.env[stackImageEnv] ? (JSON.parse(process.env[stackImageEnv]) as StackImage) : undefined;
const log = (msg: string, fields: Record<string, unknown> = {}): void => {
  console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }));
};

async function main(): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Credentials are made once so the stored objects stay readable across make down / make up.
  const credentialsFile = join(dir, 'minio-credentials.json');
  if (!existsSync(credentialsFile)) {
    await writeFile(
      credentialsFile,
      JSON.stringify({ accessKey: `mw${randomBytes(8).toString('hex')}`, secretKey: randomBytes(24).toString('base64url') }),
      { mode: 0o600 },
    );
  }
  const credentials = JSON.parse(readFileSync(credentialsFile, 'utf8')) as { accessKey: string; secretKey: string };

  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('Stopping the local stack', { reason });
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log('Failed to stop a component', { error: String(err) }));
    await rm(stateFile(dir), { force: true });
    log('Stopped the local stack');
    process.exit(process.exitCode ?? 0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // Real networking needs root; without it the stack runs as before, on loopback addresses.
  const support =
    process.env.MESHWORK_STACK_NETWORK === 'loopback'
      ? { ok: false as const, reason: 'MESHWORK_STACK_NETWORK=loopback' }
      : networkSupport();
  const earlier = readSettings(dir);
  let plan: NetworkPlan | undefined;
  let settings: StackSettings;
  if (support.ok) {
    const block = earlier?.block ?? freeNetworkBlock();
    plan = planNetwork(block, ['mw-node-1', 'mw-node-2', 'mw-node-3']);
    // On the stack's own address the well-known ports are free.
    const prometheus = earlier?.ports.prometheus;
    settings = { block, ports: { etcd: 2379, minio: 9000, apiServer: 6443, ...(prometheus === undefined ? {} : { prometheus }) } };
  } else {
    log('WARNING: running without real pod networking (loopback pod IPs, Services have no endpoints, no cluster DNS)', {
      reason: support.reason,
    });
    const [etcdPort, minioPort, apiPort] = await freePorts(3);
    settings = earlier?.ports ? { ports: earlier.ports } : { ports: { etcd: etcdPort!, minio: minioPort!, apiServer: apiPort! } };
  }
  settings.jaeger = await jaegerPorts(earlier, plan !== undefined);
  if (earlier && (earlier.block !== undefined) !== (plan !== undefined))
    log(
      'WARNING: this stack ran in the other network mode before; the store addresses it stored will not answer (make reset starts anew)',
      {},
    );
  await writeFile(settingsFile(dir), JSON.stringify(settings, null, 2));
  if (plan) {
    const network = plan;
    await createBridge(network);
    stops.push(() => removeNetwork(network));
    log('Created the bridge of the local network', { bridge: plan.bridge, hostIP: plan.hostIP, cidr: plan.cidr });
  }
  const host = plan?.hostIP ?? '127.0.0.1';

  log('Starting etcd, MinIO and the control plane');
  const [etcd, minio, cp] = await Promise.all([
    startEtcd({ dataDir: join(dir, 'etcd'), host, port: settings.ports.etcd }),
    startMinio({ dataDir: join(dir, 'minio'), host, port: settings.ports.minio, ...credentials }),
    startControlPlane({
      dir: join(dir, 'kubernetes'),
      address: host,
      apiServerPort: settings.ports.apiServer,
      extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
    }),
  ]);
  stops.push(
    () => etcd.stop(),
    () => minio.stop(),
    () => cp.stop(),
  );
  log('Started etcd, MinIO and the control plane', { etcd: etcd.endpoint, minio: minio.endpoint, apiServer: cp.server });
  const jaeger = await startStackJaeger(dir, host, settings.jaeger);
  stops.push(() => jaeger.stop());
  log('Started Jaeger', { ui: jaeger.queryUrl, otlp: jaeger.otlpEndpoint });

  let network: StackState['network'] = { mode: 'loopback', reason: support.ok ? '' : support.reason };
  if (plan) {
    const dns = await startCoreDns({ address: plan.hostIP, kubeconfig: cp.adminKubeconfig, dir: join(dir, 'coredns') });
    stops.push(() => dns.stop());
    await mustRun('kubectl', ['apply', '-f', '-'], { kubeconfig: cp.adminKubeconfig, input: kubeDnsManifest(plan.hostIP) });
    log('Started CoreDNS behind the kube-dns Service', { clusterIP: clusterDnsIP, endpoint: dns.address });
    network = { mode: 'netns', block: plan.block, hostIP: plan.hostIP, nameserver: clusterDnsIP, cidr: plan.cidr };
  }

  const agent = new NodeAgent({
    kubeconfig: cp.adminKubeconfig,
    dataDir: join(dir, 'nodes'),
    log,
    ...(image ? { images: imageRootfsImages(image.rootfs) } : {}),
    ...(plan ? { network: { plan, nameserver: clusterDnsIP } } : {}),
  });
  stops.push(() => agent.stop());
  await agent.start();
  const faults = await startFaultServer(agent);
  stops.push(() => new Promise<void>((resolve) => faults.server.close(() => resolve())));

  const prometheus = await startStackPrometheus({
    dir,
    host,
    settings,
    kubeconfig: cp.adminKubeconfig,
    apiServer: cp.server,
    caFile: cp.caFile,
  });
  stops.push(() => prometheus.stop());
  log('Started Prometheus', { url: prometheus.url });

  log('Installing the operator with the Helm chart');
  await installOperator(cp.adminKubeconfig);
  await applySampleMesh(cp.adminKubeconfig, { etcd: etcd.endpoint, minio }, jaeger.otlpEndpoint, log);
  log('Applied the sample Mesh; waiting until it is Ready', { namespace: sampleNamespace, name: sampleMesh });
  const mesh = await waitForMeshReady(cp.adminKubeconfig, 180_000);
  const gateway = plan ? await gatewayUrl(cp.adminKubeconfig) : undefined;
  log('The sample Mesh is Ready', { readyPartitions: mesh.readyPartitions, gateway });

  const state: StackState = {
    pid: process.pid,
    ...(reaperPid() !== undefined ? { reaper: reaperPid() } : {}),
    ready: true,
    dir,
    kubeconfig: cp.adminKubeconfig,
    apiServer: cp.server,
    etcd: etcd.endpoint,
    minio: { endpoint: minio.endpoint, accessKey: minio.accessKey, secretKey: minio.secretKey, bucket: minio.bucket },
    jaeger: { ui: jaeger.queryUrl, otlp: jaeger.otlpEndpoint },
    faults: faults.url,
    prometheus: prometheus.url,
    nodes: [...agent.nodes.keys()],
    partitions: { namespace: sampleNamespace, names: samplePartitions },
    mesh: { namespace: sampleNamespace, name: sampleMesh, ...(gateway ? { gateway } : {}) },
    network,
    ...(image ? { image } : {}),
    startedAt: new Date().toISOString(),
  };
  await writeFile(`${stateFile(dir)}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  await rename(`${stateFile(dir)}.tmp`, stateFile(dir));
  log('The local stack is up', { nodes: state.nodes });
}

main().catch((err: unknown) => {
  log('Failed to start the local stack', { error: err instanceof Error ? err.message : String(err) });
  // Whatever started is stopped (and the network removed) before exiting.
  process.exitCode = 1;
  process.kill(process.pid, 'SIGTERM');
});
