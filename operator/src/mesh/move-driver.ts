// Runs each Mesh's slot-move pass (`driveMeshMoves`, ADR 34) off the reconcile: the reconciler
// asks for a pass with the layout and the partitions that are ready and reads what the last
// finished pass answered, so that an etcd that is slow or unreachable never holds a reconcile.
// One pass at a time per Mesh; a request made while one runs is not run after it: the Mesh is
// queued when the pass ends, and its reconcile, seeing the driver idle and the answer, asks
// again with the latest inputs (running the next pass at once would keep the driver busy for
// every reconcile, and a busy driver's answer decides no deletion). Every pass has a deadline,
// after which its etcd client is closed (so nothing of it keeps running) and a new one is
// dialled for the next. The Mesh is also queued when a pass starts moving slots, when a pass
// answers something new, and after a failure.
import { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Mesh } from '../api/v1alpha1.ts';
import { driveMeshMoves, type MeshMovesInputs, type MeshMovesOutcome } from './mesh-moves.ts';

/** The longest one pass may take before it is abandoned (1365 slots move in about a second). */
export const movePassTimeoutMs = 30_000;
/** After a failed pass, the Mesh is queued again this much later. */
const retryAfterFailureMs = 5_000;
/** Deadline of dialling etcd. */
const dialTimeoutMs = 2_000;

/** What the reconciler asks a pass to reach. */
export type MovePassRequest = Pick<MeshMovesInputs, 'layout' | 'ready' | 'surplus'>;

/** What is known of a Mesh's slot moves. */
export interface MoveDriverState {
  /** What the last finished pass answered; undefined before any pass finished. */
  outcome?: MeshMovesOutcome;
  /** The layout that pass was asked to reach. */
  outcomeLayout?: readonly string[];
  /** A pass runs: the outcome may be about to change. */
  busy: boolean;
  /** How many passes finished. */
  passes: number;
  /**
   * The last pass that moved slots: its number (of `passes`), so that its Event is recorded
   * once even when a later pass that moved nothing finished before the reconcile looked.
   */
  lastMove?: { pass: number; moved: number; step: MeshMovesOutcome['step'] };
  /** Slots moved so far by the pass that runs now (0 when none runs or it moved none yet). */
  moving: number;
  /** Why the last pass failed, when it did (cleared by the next that finishes). */
  failure?: string;
}

export interface MeshMoveDriverOptions {
  log: Logger;
  /** Queues a Mesh (its `namespace/name`). */
  enqueue: (key: string) => void;
  /** Runs one pass; tests replace it. */
  drive?: typeof driveMeshMoves;
  passTimeoutMs?: number;
}

interface MeshEntry {
  endpoints: string;
  hosts: string[];
  client: Etcd3 | undefined;
  name: string;
  state: Omit<MoveDriverState, 'busy'>;
  running: boolean;
  /** A request came while the pass ran: queue the Mesh when it ends. */
  again: boolean;
  retry: NodeJS.Timeout | undefined;
}

function sameStep(a: MeshMovesOutcome['step'] | undefined, b: MeshMovesOutcome['step']): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Runs the slot-move passes of the Meshes, one at a time each, in the background. */
export class MeshMoveDriver {
  readonly #options: MeshMoveDriverOptions;
  readonly #meshes = new Map<string, MeshEntry>();
  #stopped = false;

  constructor(options: MeshMoveDriverOptions) {
    this.#options = options;
  }

  /** What is known of the Mesh's moves now (nothing before its first pass finished). */
  state(key: string): MoveDriverState {
    const entry = this.#meshes.get(key);
    return entry ? { ...entry.state, busy: entry.running } : { passes: 0, moving: 0, busy: false };
  }

  /** Asks for a pass toward `request`: it starts now, or, while one runs, the Mesh is queued when that one ends. */
  request(key: string, mesh: Mesh, request: MovePassRequest): void {
    if (this.#stopped) return;
    const hosts = [...mesh.spec.stores.etcd.endpoints];
    const endpoints = [...hosts].sort().join(',');
    let entry = this.#meshes.get(key);
    if (entry && entry.endpoints !== endpoints) {
      this.forget(key);
      entry = undefined;
    }
    if (!entry) {
      entry = {
        endpoints,
        hosts,
        client: undefined,
        name: mesh.metadata.name,
        state: { passes: 0, moving: 0 },
        running: false,
        again: false,
        retry: undefined,
      };
      this.#meshes.set(key, entry);
    }
    if (entry.running) entry.again = true;
    else void this.#run(key, entry, request);
  }

  /** Forgets a deleted Mesh and closes its etcd client (a pass that runs is cut short). */
  forget(key: string): void {
    const entry = this.#meshes.get(key);
    if (!entry) return;
    this.#meshes.delete(key);
    if (entry.retry) clearTimeout(entry.retry);
    entry.client?.close();
    entry.client = undefined;
  }

  /** Stops every pass and closes the etcd clients; only the leader runs passes. */
  stop(): void {
    this.#stopped = true;
    for (const key of [...this.#meshes.keys()]) this.forget(key);
  }

  async #run(key: string, entry: MeshEntry, request: MovePassRequest): Promise<void> {
    const { log, enqueue } = this.#options;
    const drive = this.#options.drive ?? driveMeshMoves;
    const timeoutMs = this.#options.passTimeoutMs ?? movePassTimeoutMs;
    entry.running = true;
    entry.again = false;
    entry.state.moving = 0;
    entry.client ??= new Etcd3({ hosts: entry.hosts, dialTimeout: dialTimeoutMs });
    const client = entry.client;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the pass did not finish in ${timeoutMs} ms`)), timeoutMs);
    });
    const onMoved: MeshMovesInputs['onMoved'] = (move) => {
      const first = entry.state.moving === 0;
      entry.state.moving += move.slots.reduce((n, r) => n + r.last - r.first + 1, 0);
      // Once, so that the status can say slots are moving while the pass runs.
      if (first) enqueue(key);
    };
    let news: boolean;
    try {
      const outcome = await Promise.race([drive(client, { mesh: entry.name, ...request, onMoved }), deadline]);
      news = outcome.moved > 0 || !sameStep(entry.state.outcome?.step, outcome.step) || entry.state.failure !== undefined;
      const passes = entry.state.passes + 1;
      const lastMove = outcome.moved > 0 ? { pass: passes, moved: outcome.moved, step: outcome.step } : entry.state.lastMove;
      entry.state = { outcome, outcomeLayout: request.layout, passes, moving: 0, ...(lastMove ? { lastMove } : {}) };
      if (outcome.moved > 0)
        log.info({ mesh: key, moved: outcome.moved, step: outcome.step.kind }, `Moved ${outcome.moved} slots of Mesh ${key}`);
    } catch (err) {
      const failure = err instanceof Error ? err.message : String(err);
      log.warn({ err, mesh: key }, `Failed to move the slots of Mesh ${key}`);
      // A pass cut short may still hold calls on its client: close it, the next pass dials anew.
      if (entry.client === client) {
        client.close();
        entry.client = undefined;
      }
      news = entry.state.failure !== failure;
      entry.state = { ...entry.state, moving: 0, failure };
      if (entry.retry) clearTimeout(entry.retry);
      entry.retry = setTimeout(() => enqueue(key), retryAfterFailureMs);
      entry.retry.unref();
    } finally {
      clearTimeout(timer);
      entry.running = false;
    }
    // Queued after `running` is cleared, so that the reconcile sees the driver idle.
    if ((news || entry.again) && this.#meshes.get(key) === entry) enqueue(key);
    entry.again = false;
  }
}
