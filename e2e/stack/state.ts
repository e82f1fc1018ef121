// Where the local stack keeps its state, and how `make up`, `make down` and the fault CLI find it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../harness/binaries.ts';

export { processAlive } from '../harness/process.ts';

/** What the stack daemon publishes once everything is up. */
export interface StackState {
  pid: number;
  ready: boolean;
  dir: string;
  kubeconfig: string;
  apiServer: string;
  etcd: string;
  minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string };
  faults: string;
  nodes: string[];
  /** The sample MeshPartition. */
  partition: { namespace: string; name: string };
  startedAt: string;
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
