// Where the local stack keeps its state, and how `make up`, `make down` and the fault CLI find it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../harness/binaries.ts';

export { processAlive } from '../harness/process.ts';

/** What the stack daemon publishes once everything is up. */
export interface StackState {
  pid: number;
  /** The stack's reaper (e2e/harness/reaper.ts): it outlives the stack briefly, killing and removing what is left. */
  reaper?: number;
  ready: boolean;
  dir: string;
  kubeconfig: string;
  apiServer: string;
  etcd: string;
  minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string };
  /** Jaeger: its UI and query API, and the OTLP/HTTP endpoint the pods export to. */
  jaeger?: { ui: string; otlp: string };
  faults: string;
  /** Prometheus' URL: it scrapes every Meshwork pod (observability/scrape.ts). */
  prometheus?: string;
  nodes: string[];
  /** The sample Mesh's MeshPartitions (all in the Mesh's namespace). */
  partitions: { namespace: string; names: string[] };
  /** The sample Mesh, and its gateway's address from this machine (absent without pod networking). */
  mesh: { namespace: string; name: string; gateway?: string };
  /** How pods are networked (ADR 27); `reason` says why the stack fell back to loopback. */
  network: { mode: 'netns'; block: number; hostIP: string; nameserver: string; cidr: string } | { mode: 'loopback'; reason: string };
  /** Pods run from the Meshwork image's unpacked root filesystem (`make up IMAGE=1`); absent: from the work tree. */
  image?: StackImage;
  startedAt: string;
}

/** The image a stack's pods run from: its reference, manifest digest and unpacked root filesystem. */
export interface StackImage {
  ref: string;
  digest: string;
  rootfs: string;
}

/** How `make up` hands the unpacked image to the stack daemon (a JSON StackImage). */
export const stackImageEnv = 'MESHWORK_STACK_IMAGE';

/**
 * What the stack keeps the same from one `make up` to the next, so that what the cluster
 * stored (the MeshPartition's store endpoints in its spec and Secrets, pod kubeconfigs) still
 * points at the right servers: the network block and the servers' ports. Made by the first
 * `make up`, removed by `make reset`.
 */
export interface StackSettings {
  /** The network block (198.19.(8b).0/21) of the namespaces, when the stack runs with real networking. */
  block?: number;
  ports: { etcd: number; minio: number; apiServer: number; prometheus?: number };
  /** Jaeger's query (UI) and OTLP ports; absent in the settings of a stack made before Jaeger was part of it. */
  jaeger?: { query: number; otlp: number };
}

export function settingsFile(dir = stackDir()): string {
  return join(dir, 'settings.json');
}

/** The settings of an earlier `make up` in this directory, if any. */
export function readSettings(dir = stackDir()): StackSettings | undefined {
  try {
    return JSON.parse(readFileSync(settingsFile(dir), 'utf8')) as StackSettings;
  } catch {
    return undefined;
  }
}

/** The stack's directory: MESHWORK_STACK_DIR, or .cache/stack in the repository. */
export function stackDir(): string {
  return process.env.MESHWORK_STACK_DIR ?? join(repoRoot, '.cache', 'stack');
}

export function stateFile(dir = stackDir()): string {
  return join(dir, 'state.json');
}

/** The published state, or undefined when the stack is not up. */
export function readState(dir = stackDir()): StackState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}
