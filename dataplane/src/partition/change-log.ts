// An in-memory log of which entry paths changed at which revision, per object: soft state
// rebuilt from an etcd watch, so that `changes` costs O(changes) instead of a scan of every
// entry of the object. It knows its horizon: asked about anything older, it says so.

/** Bounds on the log's memory. */
export interface ChangeLogLimits {
  /** Changes kept per object; the older half is dropped when exceeded. */
  perObject: number;
  /** Changes kept in all; the whole log restarts (horizon = now) when exceeded. */
  total: number;
}

interface ObjectLog {
  /** Changes at or below this revision may be missing from the log. */
  horizon: number;
  revisions: number[];
  paths: string[];
}

/** Per-object change log with a horizon below which it cannot answer. */
export class ChangeLog {
  readonly #limits: ChangeLogLimits;
  readonly #objects = new Map<string, ObjectLog>();
  #horizon: number;
  #total = 0;

  /** Starts a log that has seen every change after revision `horizon`. */
  constructor(horizon: number, limits: ChangeLogLimits) {
    this.#horizon = horizon;
    this.#limits = limits;
  }

  /** The revision after which every change is known (for objects not trimmed since). */
  get horizon(): number {
    return this.#horizon;
  }

  /** Records that `path` of `objectId` changed at `revision` (revisions arrive in order). */
  record(objectId: string, path: string, revision: number): void {
    let log = this.#objects.get(objectId);
    if (log === undefined) {
      log = { horizon: this.#horizon, revisions: [], paths: [] };
      this.#objects.set(objectId, log);
    }
    log.revisions.push(revision);
    log.paths.push(path);
    this.#total++;
    if (log.revisions.length > this.#limits.perObject) {
      const drop = Math.floor(log.revisions.length / 2);
      log.horizon = log.revisions[drop - 1]!;
      log.revisions.splice(0, drop);
      log.paths.splice(0, drop);
      this.#total -= drop;
    }
    if (this.#total > this.#limits.total) this.restart(revision);
  }

  /** Forgets an object (it was deleted). */
  forget(objectId: string): void {
    const log = this.#objects.get(objectId);
    if (log) this.#total -= log.revisions.length;
    this.#objects.delete(objectId);
  }

  /** Drops everything; the log knows only changes after `horizon` from now on. */
  restart(horizon: number): void {
    this.#objects.clear();
    this.#total = 0;
    this.#horizon = horizon;
  }

  /**
   * The distinct paths of `objectId` changed in (since, upTo], in first-change order; or
   * undefined when the log does not reach back to `since`.
   */
  changedPaths(objectId: string, since: number, upTo: number): string[] | undefined {
    const log = this.#objects.get(objectId);
    const horizon = log?.horizon ?? this.#horizon;
    if (since < horizon) return undefined;
    if (log === undefined) return [];
    // First index with a revision above `since`.
    let lo = 0;
    let hi = log.revisions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (log.revisions[mid]! > since) hi = mid;
      else lo = mid + 1;
    }
    const seen = new Set<string>();
    for (let i = lo; i < log.revisions.length && log.revisions[i]! <= upTo; i++) seen.add(log.paths[i]!);
    return [...seen];
  }
}
