// Prometheus (bin/prometheus, built by `make tools` from tools/prometheus) for the local stack
// and the dashboards' e2e test: it scrapes fixed targets or the pods it discovers through an
// API server (observability/scrape.ts) and keeps its data in `dataDir`, so that a stack's
// history survives make down / make up.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { prometheusConfig, type ScrapeOptions } from '../../observability/scrape.ts';
import { requireBinary } from './binaries.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface PrometheusOptions extends ScrapeOptions {
  /** Configuration, TSDB and log go here (kept on stop). */
  dataDir: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Port; a free one otherwise. */
  port?: number;
  timeoutMs?: number;
}

export interface PrometheusServer {
  /** http://HOST:PORT */
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

/** Starts Prometheus and waits until /-/ready answers. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binary = requireBinary('prometheus');
  await mkdir(options.dataDir, { recursive: true });
  const port = options.port ?? (await freePorts(1))[0]!;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  const configFile = join(options.dataDir, 'prometheus.yml');
  await writeFile(configFile, stringify(prometheusConfig(options)));
  const logFile = join(options.dataDir, 'prometheus.log');
  const proc = ManagedProcess.start({
    component: 'prometheus',
    binary,
    logFile,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(options.dataDir, 'data')}`,
      '--storage.tsdb.retention.time=7d',
      `--web.listen-address=${url.slice('http://'.length)}`,
      '--log.level=warn',
    ],
  });
  try {
    await proc.waitReady(
      async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok === true,
      { timeoutMs: options.timeoutMs ?? 60_000, what: 'to answer /-/ready' },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    url,
    logFile,
    stop: async () => {
      await proc.stop();
    },
  };
}
