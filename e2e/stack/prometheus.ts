// The local stack's Prometheus: it discovers every Meshwork pod through the stack's API server,
// evaluates Meshwork's alert rules, and keeps its data and its port across make down / make up
// (the port in settings.json, the TSDB in .cache/stack/prometheus).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../harness/binaries.ts';
import { freePorts } from '../harness/ports.ts';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus.ts';
import { settingsFile, type StackSettings } from './state.ts';

/**
 * Starts the stack's Prometheus on `host`, on a port chosen free by the first start and kept in
 * settings (not 9090: a Prometheus the Debian package started as a service may hold it).
 */
export async function startStackPrometheus(options: {
  dir: string;
  host: string;
  settings: StackSettings;
  kubeconfig: string;
}): Promise<PrometheusServer> {
  const { settings } = options;
  if (settings.ports.prometheus === undefined) {
    settings.ports.prometheus = (await freePorts(1, options.host))[0]!;
    await writeFile(settingsFile(options.dir), JSON.stringify(settings, null, 2));
  }
  return startPrometheus({
    dataDir: join(options.dir, 'prometheus'),
    host: options.host,
    port: settings.ports.prometheus,
    kubeconfig: options.kubeconfig,
    scrapeInterval: '5s',
    ruleFiles: [join(repoRoot, 'charts', 'meshwork', 'alerts', 'meshwork.rules.yaml')],
  });
}
