// Jaeger in the local stack: started by the stack's daemon next to etcd and MinIO, on the
// address the pods reach the stores at, so that the sample Mesh exports its traces to it
// (spec.telemetry.otlpEndpoint). Traces are kept in memory: `make down` forgets them.
import { join } from 'node:path';
import { startJaeger, type JaegerServer } from '../harness/jaeger.ts';
import { freePorts } from '../harness/ports.ts';
import type { StackSettings, StackState } from './state.ts';

/** Jaeger's well-known ports, used on the stack's own address (real networking). */
export const jaegerWellKnownPorts = { query: 16686, otlp: 4318 } as const;

/** The ports Jaeger keeps from one `make up` to the next: well known with real networking, else chosen once. */
export async function jaegerPorts(earlier: StackSettings | undefined, ownAddress: boolean): Promise<NonNullable<StackSettings['jaeger']>> {
  if (ownAddress) return { ...jaegerWellKnownPorts };
  if (earlier?.jaeger) return earlier.jaeger;
  const [query, otlp] = await freePorts(2);
  return { query: query!, otlp: otlp! };
}

/** Starts the stack's Jaeger on `host`. */
export async function startStackJaeger(dir: string, host: string, ports: NonNullable<StackSettings['jaeger']>): Promise<JaegerServer> {
  return startJaeger({ dir: join(dir, 'jaeger'), host, queryPort: ports.query, otlpPort: ports.otlp, maxTraces: 50_000 });
}

/** What `make up` prints about Jaeger. */
export function describeJaeger(state: StackState): string[] {
  if (state.jaeger === undefined) return [];
  return [
    `  Jaeger (traces)  ${state.jaeger.ui}  (UI and query API); the sample Mesh exports to ${state.jaeger.otlp}`,
    `                   its pods trace every request; a client traces with OTEL_EXPORTER_OTLP_ENDPOINT=${state.jaeger.otlp}`,
  ];
}
