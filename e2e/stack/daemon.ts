// The local stack's supervisor, started in the background by `make up`: etcd, MinIO, a
// Kubernetes control plane and the node agent, kept running until SIGTERM (`make down`).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startControlPlane } from '../harness/controlplane.ts';
import { startEtcd } from '../harness/etcd.ts';
import { startMinio } from '../harness/minio.ts';
import { NodeAgent } from '../node-agent/agent.ts';
import { startFaultServer } from '../node-agent/fault-server.ts';
import { applySamplePartition, installOperator, sampleNamespace, samplePartition, waitForPartitionReady } from './meshwork.ts';
import { stackDir, stateFile, type StackState } from './state.ts';

const dir = process.argv[2] ?? stackDir();
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
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  log('Starting etcd, MinIO and the control plane');
  const [etcd, minio, cp] = await Promise.all([
    startEtcd({ dataDir: join(dir, 'etcd') }),
    startMinio({ dataDir: join(dir, 'minio'), ...credentials }),
    startControlPlane({
      dir: join(dir, 'kubernetes'),
      extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
    }),
  ]);
  stops.push(
    () => etcd.stop(),
    () => minio.stop(),
    () => cp.stop(),
  );
  log('Started etcd, MinIO and the control plane', { etcd: etcd.endpoint, minio: minio.endpoint, apiServer: cp.server });

  const agent = new NodeAgent({ kubeconfig: cp.adminKubeconfig, dataDir: join(dir, 'nodes'), log });
  await agent.start();
  stops.push(() => agent.stop());
  const faults = await startFaultServer(agent);
  stops.push(() => new Promise<void>((resolve) => faults.server.close(() => resolve())));

  log('Installing the operator with the Helm chart');
  await installOperator(cp.adminKubeconfig);
  await applySamplePartition(cp.adminKubeconfig, { etcd: etcd.endpoint, minio });
  log('Applied the sample MeshPartition; waiting until it is Ready', { namespace: sampleNamespace, name: samplePartition });
  const partition = await waitForPartitionReady(cp.adminKubeconfig, 180_000);
  log('The sample MeshPartition is Ready', { readyReplicas: partition.readyReplicas });

  const state: StackState = {
    pid: process.pid,
    ready: true,
    dir,
    kubeconfig: cp.adminKubeconfig,
    apiServer: cp.server,
    etcd: etcd.endpoint,
    minio: { endpoint: minio.endpoint, accessKey: minio.accessKey, secretKey: minio.secretKey, bucket: minio.bucket },
    faults: faults.url,
    nodes: [...agent.nodes.keys()],
    partition: { namespace: sampleNamespace, name: samplePartition },
    startedAt: new Date().toISOString(),
  };
  await writeFile(`${stateFile(dir)}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  await rename(`${stateFile(dir)}.tmp`, stateFile(dir));
  log('The local stack is up', { nodes: state.nodes });
}

main().catch((err: unknown) => {
  log('Failed to start the local stack', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
