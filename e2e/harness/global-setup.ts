// Starts the shared real servers once per test run (etcd, MinIO, and a Kubernetes control
// plane), hands their addresses to the tests, and stops them at the end of the run.
import type { TestProject } from 'vitest/node';
import { startControlPlane, type ControlPlane } from './controlplane.ts';
import { startEtcd, type EtcdServer } from './etcd.ts';
import { startMinio, type MinioServer } from './minio.ts';
import type { SharedStack } from './stack.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: SharedStack;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(started.reverse().map((s) => s.stop()));
  };
  const track = <T extends { stop(): Promise<void> }>(server: T): T => {
    started.push(server);
    return server;
  };
  const t0 = Date.now();
  const results = await Promise.allSettled([
    startEtcd().then(track),
    startMinio().then(track),
    // Nodes are declared lost after 20 s without a heartbeat (50 s by default) so that node
    // failures can be tested within a test's time.
    startControlPlane({
      extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
    }).then(track),
  ]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    await stopAll();
    throw failures[0]!.reason;
  }
  const [etcd, minio, cp] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [EtcdServer, MinioServer, ControlPlane];
  console.log(`Started etcd, MinIO and the control plane in ${((Date.now() - t0) / 1000).toFixed(1)} s (logs under ${cp.dir})`);
  project.provide('stack', {
    etcd: { endpoint: etcd.endpoint },
    minio: {
      endpoint: minio.endpoint,
      host: minio.host,
      port: minio.port,
      accessKey: minio.accessKey,
      secretKey: minio.secretKey,
      bucket: minio.bucket,
    },
    controlPlane: { server: cp.server, adminKubeconfig: cp.adminKubeconfig, dir: cp.dir },
  });
  return stopAll;
}
