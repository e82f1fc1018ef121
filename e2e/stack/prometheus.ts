// The local stack's Prometheus: it scrapes every Meshwork pod, which it learns from the stack's
// API server through an http_sd endpoint served here (Debian's Prometheus is built without
// Kubernetes discovery; ADR 40), evaluates Meshwork's alert rules, and keeps its data and its
// port across make down / make up (the port in settings.json, the TSDB in .cache/stack/prometheus).
import { createServer } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { podTargets } from '../../observability/scrape.ts';
import { repoRoot } from '../harness/binaries.ts';
import { freePorts } from '../harness/ports.ts';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus.ts';
import { settingsFile, type StackSettings } from './state.ts';

/** Serves the Meshwork pods of every namespace as http_sd target groups, listed from the API server at each request. */
async function startPodDiscovery(kubeconfig: string): Promise<{ url: string; stop(): Promise<void> }> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const server = createServer((_req, res) => {
    core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/name=meshwork' }).then(
      (list) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(podTargets(list.items))),
      (err: unknown) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`cannot list pods: ${String(err)}`),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/targets`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Starts the stack's Prometheus on `host`, on a port chosen free by the first start and kept in
 * settings (not 9090: a Prometheus the Debian package started as a service may hold it).
 */
export async function startStackPrometheus(options: {
  dir: string;
  host: string;
  settings: StackSettings;
  kubeconfig: string;
}): Promise<{ url: string; stop(): Promise<void> }> {
  const { settings } = options;
  if (settings.ports.prometheus === undefined) {
    settings.ports.prometheus = (await freePorts(1, options.host))[0]!;
    await writeFile(settingsFile(options.dir), JSON.stringify(settings, null, 2));
  }
  const discovery = await startPodDiscovery(options.kubeconfig);
  let prometheus: PrometheusServer;
  try {
    prometheus = await startPrometheus({
      dataDir: join(options.dir, 'prometheus'),
      host: options.host,
      port: settings.ports.prometheus,
      discoveryUrl: discovery.url,
      scrapeInterval: '5s',
      ruleFiles: [join(repoRoot, 'charts', 'meshwork', 'alerts', 'meshwork.rules.yaml')],
    });
  } catch (err) {
    await discovery.stop();
    throw err;
  }
  return {
    url: prometheus.url,
    stop: async () => {
      await prometheus.stop();
      await discovery.stop();
    },
  };
}
