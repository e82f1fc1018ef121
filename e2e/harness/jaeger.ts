// Jaeger (cmd/jaeger: collector, query service and UI in one process) on loopback with random
// ports: traces kept in memory, received over OTLP/HTTP, read back through the query service's
// HTTP JSON API (the one its UI uses).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { ComponentStartError } from './errors.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface JaegerOptions {
  /** Keep the configuration and log here (kept on stop); a fresh temporary directory otherwise. */
  dir?: string;
  /** Address it listens on (default 127.0.0.1). */
  host?: string;
  /** Port of the UI and query API; random otherwise. */
  queryPort?: number;
  /** Port of the OTLP/HTTP receiver; random otherwise. */
  otlpPort?: number;
  /** Traces kept in memory before the oldest are dropped (default 10000). */
  maxTraces?: number;
  timeoutMs?: number;
}

/** One span as the query API returns it, with its service resolved. */
export interface JaegerSpan {
  traceId: string;
  spanId: string;
  /** The CHILD_OF reference's span, or "" for a root. */
  parentSpanId: string;
  operationName: string;
  service: string;
  tags: Record<string, unknown>;
}

export interface JaegerServer {
  /** http://127.0.0.1:PORT: the UI, and the query API under /api. */
  queryUrl: string;
  /** http://127.0.0.1:PORT: the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to /v1/traces. */
  otlpEndpoint: string;
  dir: string;
  logFile: string;
  process: ManagedProcess;
  /** The spans of one trace (32 hex digits), [] while Jaeger has none of it. */
  trace(traceId: string): Promise<JaegerSpan[]>;
  /** Services that have sent spans. */
  services(): Promise<string[]>;
  stop(): Promise<void>;
}

interface QueryTrace {
  traceID: string;
  spans: {
    traceID: string;
    spanID: string;
    operationName: string;
    processID: string;
    references?: { refType: string; spanID: string }[];
    tags?: { key: string; value: unknown }[];
  }[];
  processes: Record<string, { serviceName: string }>;
}

/** The collector configuration: OTLP/HTTP in, memory storage, query API and UI; no other listener. */
function configYaml(host: string, queryPort: number, queryGrpcPort: number, otlpPort: number, maxTraces: number): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: ${maxTraces}
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: "${host}:${queryPort}"
    grpc:
      endpoint: "${host}:${queryGrpcPort}"

receivers:
  otlp:
    protocols:
      http:
        endpoint: "${host}:${otlpPort}"

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`;
}

/** Starts Jaeger and waits until its query API answers. Retries on a taken port. */
export async function startJaeger(options: JaegerOptions = {}): Promise<JaegerServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startJaegerOnce(options);
    } catch (err) {
      const fixed = options.queryPort !== undefined || options.otlpPort !== undefined;
      if (!(err instanceof ComponentStartError && err.portTaken && !fixed && attempt < 3)) throw err;
    }
  }
}

async function startJaegerOnce(options: JaegerOptions): Promise<JaegerServer> {
  const binary = requireBinary('jaeger');
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'meshwork-jaeger-')));
  await mkdir(dir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const [queryPort, queryGrpcPort, otlpPort] = await freePorts(3);
  const config = join(dir, 'jaeger.yaml');
  await writeFile(
    config,
    configYaml(host, options.queryPort ?? queryPort!, queryGrpcPort!, options.otlpPort ?? otlpPort!, options.maxTraces ?? 10_000),
  );
  const logFile = join(dir, 'jaeger.log');
  const proc = ManagedProcess.start({
    component: 'jaeger',
    binary,
    logFile,
    args: ['--config', `file:${config}`],
    env: { PATH: process.env.PATH },
  });
  const stop = async (): Promise<void> => {
    await proc.stop();
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  const queryUrl = `http://${host}:${options.queryPort ?? queryPort!}`;
  const otlpEndpoint = `http://${host}:${options.otlpPort ?? otlpPort!}`;
  try {
    await proc.waitReady(
      async () => {
        // Both listeners: the query API, and the receiver (a GET on it is refused with 405).
        const [query, otlp] = await Promise.all([
          fetch(`${queryUrl}/api/services`, { signal: AbortSignal.timeout(1000) }),
          fetch(`${otlpEndpoint}/v1/traces`, { signal: AbortSignal.timeout(1000) }),
        ]);
        return query.ok && otlp.status === 405;
      },
      { timeoutMs: options.timeoutMs ?? 30_000, what: 'to answer /api/services and /v1/traces' },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const getJson = async (path: string): Promise<unknown> => {
    const res = await fetch(`${queryUrl}${path}`, { signal: AbortSignal.timeout(5000) });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`jaeger: GET ${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  return {
    queryUrl,
    otlpEndpoint,
    dir,
    logFile,
    process: proc,
    async trace(traceId) {
      const body = (await getJson(`/api/traces/${traceId}`)) as { data?: QueryTrace[] } | undefined;
      const spans: JaegerSpan[] = [];
      for (const t of body?.data ?? []) {
        for (const s of t.spans) {
          spans.push({
            traceId: s.traceID.padStart(32, '0'),
            spanId: s.spanID.padStart(16, '0'),
            parentSpanId: (s.references ?? []).find((r) => r.refType === 'CHILD_OF')?.spanID.padStart(16, '0') ?? '',
            operationName: s.operationName,
            service: t.processes[s.processID]?.serviceName ?? '',
            tags: Object.fromEntries((s.tags ?? []).map((tag) => [tag.key, tag.value])),
          });
        }
      }
      return spans;
    },
    async services() {
      const body = (await getJson('/api/services')) as { data?: string[] | null } | undefined;
      return body?.data ?? [];
    },
    stop,
  };
}
