// The operator role: `node operator/src/main.ts`. Reads its configuration, connects to
// the API server (in-cluster or KUBECONFIG), serves metrics and health, campaigns for the
// leader Lease, and reconciles Meshes and MeshPartitions only while it leads.
import { pino } from 'pino';
import { ConfigError, OperatorExitCode } from '@meshwork/contract';
import { loadConfig, type OperatorConfig } from './config.ts';
import { LeaderElector } from './controller/leaderelection.ts';
import { KubeClient } from './kube/client.ts';
import { loadInClusterCredentials, loadKubeconfigFile, type Credentials } from './kube/credentials.ts';
import { MeshController } from './mesh/controller.ts';
import { MeshPartitionController } from './meshpartition/controller.ts';
import { OperatorMetrics } from './metrics.ts';
import { startOperatorServer } from './server.ts';

function credentialsFor(config: OperatorConfig): Credentials {
  return config.kubeconfig ? loadKubeconfigFile(config.kubeconfig) : loadInClusterCredentials();
}

async function main(): Promise<void> {
  let config: OperatorConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(OperatorExitCode.configInvalid);
  }
  const log = pino({ level: config.logLevel, base: { role: 'operator', identity: config.identity } });
  const metrics = new OperatorMetrics();
  const observe = (verb: string, resource: string, code: string, seconds?: number): void => {
    metrics.apiRequests.inc({ verb, resource, code });
    if (seconds !== undefined && verb !== 'watch') metrics.apiRequestDuration.observe({ verb, resource }, seconds);
  };
  const kc = credentialsFor(config);
  const client = new KubeClient(kc, { observe });
  // What both controllers are configured with; the MeshPartition controller adds the watchdog's bound.
  const controllerOptions = {
    client,
    metrics,
    log,
    watchNamespace: config.watchNamespace,
    concurrency: config.concurrency,
    identity: config.identity,
    defaultImage: config.image,
  };
  const controller = new MeshPartitionController({ ...controllerOptions, maxUnhealthyPercent: config.maxUnhealthyPercent });
  const meshes = new MeshController(controllerOptions);
  const server = await startOperatorServer({
    ...config.http,
    registry: metrics.registry,
    ready: () => controller.synced && meshes.synced,
  });
  log.info({ address: `${config.http.host}:${config.http.port}`, server: kc.server.origin }, 'Started the operator');

  const elector: { current?: LeaderElector } = {};
  const shutdown = async (signal: string): Promise<void> => {
    log.info({ signal }, 'Stopping the operator');
    await Promise.all([controller.stop(), meshes.stop()]);
    await elector.current?.stop();
    server.close();
    client.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  await Promise.all([controller.startInformers(), meshes.startInformers()]);
  const lead = (): void => {
    metrics.leader.set(1);
    log.info('Started reconciling Meshes and MeshPartitions');
    controller.startWorkers();
    meshes.startWorkers();
  };
  if (!config.leaderElect) {
    lead();
    return;
  }
  // A lease client with a short deadline, so a hung API server cannot hold a renewal past the renew deadline.
  const leaseClient = new KubeClient(kc, { observe, timeoutMs: 4_000 });
  elector.current = new LeaderElector({
    client: leaseClient,
    namespace: config.namespace,
    name: config.leaseName,
    identity: config.identity,
    log,
    onStartedLeading: lead,
    onStoppedLeading: (reason) => {
      // Another process may already lead: stop at once rather than reconcile beside it.
      log.fatal({ reason }, 'Lost the leader lease; exiting');
      process.exit(OperatorExitCode.leadershipLost);
    },
  });
  elector.current.start();
}

main().catch((err: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ level: 60, msg: 'Failed to start the operator', err: String(err), stack: (err as Error).stack })}\n`,
  );
  process.exit(OperatorExitCode.startFailed);
});
