// Feeds the ChangeLog from an etcd watch over this partition's slots. The watch starts at
// the revision the process started at; a `changes` request waits until the feed has caught
// up with the object's latest change (its head key's revision) before answering from memory.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { slotOf, type SlotRange } from '../slots.ts';
import { slotSegment } from '../stores/keys.ts';
import { ChangeLog } from './change-log.ts';

/** Receives every key change the watch delivers, and the restarts after which some were missed. */
export interface ChangeListener {
  onKeyChange(key: string, revision: number, deleted: boolean, value: Buffer): void;
  /** The watch started over from a newer revision: changes in between were not delivered. */
  onRestart(): void;
}

/** The longest wait between two attempts to restart the watch. */
const maxRestartDelayMs = 10_000;

const entryKeyPattern = /^\/mw\/s\/\d{4}\/o\/([A-Za-z0-9_-]+)\/e\/(.+)$/s;
const objectKeyPattern = /^\/mw\/s\/\d{4}\/o\/([A-Za-z0-9_-]+)$/;

/** The change log of this partition's objects, kept current by an etcd watch. */
export class ChangeFeed {
  readonly #etcd: Etcd3;
  readonly #slots: readonly SlotRange[];
  /** The slots the watch covers: from the first to the last of the ranges. */
  readonly #span: { first: number; last: number };
  readonly #logger: Logger;
  #log: ChangeLog | undefined;
  #watcher: Watcher | undefined;
  #seen = 0;
  #connected = false;
  #waiters: { revision: number; resolve: () => void }[] = [];
  #stopped = false;
  readonly #listeners: ChangeListener[] = [];

  constructor(etcd: Etcd3, slots: readonly SlotRange[], logger: Logger) {
    this.#etcd = etcd;
    this.#slots = slots;
    this.#logger = logger;
    this.#span = { first: Math.min(...slots.map((r) => r.first)), last: Math.max(...slots.map((r) => r.last)) };
  }

  /** Starts watching from the current revision. */
  async start(): Promise<void> {
    const revision = Number((await this.#etcd.get('/mw/revision-probe').exec()).header.revision);
    this.#log = new ChangeLog(revision, { perObject: 20_000, total: 200_000 });
    this.#seen = revision;
    const first = Math.min(...this.#slots.map((r) => r.first));
    const last = Math.max(...this.#slots.map((r) => r.last));
    const watcher = await this.#etcd
      .watch()
      .inRange({ start: `/mw/s/${slotSegment(first)}/`, end: `/mw/s/${slotSegment(last + 1)}/` })
      .startRevision(String(revision + 1))
      .create();
    this.#watcher = watcher;
    this.#connected = true;
    // While the watch is cut off from etcd, changes may be happening unseen: long polls must not answer "nothing changed".
    watcher.on('disconnected', () => {
      this.#connected = false;
    });
    watcher.on('connected', () => {
      this.#connected = true;
    });
    watcher.on('put', (kv) => this.#observe(kv, false));
    watcher.on('delete', (kv) => this.#observe(kv, true));
    watcher.on('data', (res) => this.#advance(Number(res.header.revision)));
    watcher.on('error', (err) => {
      // Typically compaction past a reconnect: what was missed is unknown, so start over.
      this.#logger.warn({ err }, 'Restarted the change feed after a watch error');
      void this.#restart();
    });
  }

  /**
   * The distinct paths of an object changed in (since, upTo], once the feed has seen revision
   * `complete` (the object's latest change); undefined when the feed does not reach back to
   * `since` or does not catch up in time.
   */
  async changedPaths(objectId: string, since: number, upTo: number, complete: number, timeoutMs = 1000): Promise<string[] | undefined> {
    if (!this.covers(objectId)) return undefined;
    if (this.#log === undefined || since < this.#log.horizon) return undefined;
    if (!(await this.#caughtUp(complete, timeoutMs))) return undefined;
    // The log may have restarted while we waited.
    return this.#log?.changedPaths(objectId, since, upTo);
  }

  /**
   * What the log knows now, without waiting: the paths of an object changed after `since`
   * and the revision the feed has seen; undefined when the log does not reach back to `since`.
   */
  peek(objectId: string, since: number): { paths: string[]; seen: number } | undefined {
    if (!this.covers(objectId)) return undefined;
    const paths = this.#log?.changedPaths(objectId, since, Number.MAX_SAFE_INTEGER);
    return paths === undefined ? undefined : { paths, seen: this.#seen };
  }

  /**
   * The revision up to which every change of the watched slots has been delivered: the one
   * watch delivers them in revision order, and this advances after each batch.
   */
  get seen(): number {
    return this.#seen;
  }

  /** Whether the watch is connected to etcd, so that what it has not delivered has not happened. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Whether the watch covers the object's slot (the span of the ranges the process was started
   * with). An object in a slot this partition gained by a move (ADR 34) is outside it: its
   * changes are not in the log, so an empty list from the log would be wrong, not empty.
   */
  covers(objectId: string): boolean {
    const slot = slotOf(objectId);
    return slot >= this.#span.first && slot <= this.#span.last;
  }

  /** Adds a listener for the changes this process's one watch delivers (long polls build on it). */
  listen(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /** Stops the watch. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher?.cancel();
  }

  #observe(kv: IKeyValue, deleted: boolean): void {
    const key = kv.key.toString('utf8');
    const revision = Number(kv.mod_revision);
    const entry = entryKeyPattern.exec(key);
    if (entry) {
      this.#log?.record(entry[1]!, entry[2]!, revision);
    } else if (deleted) {
      const object = objectKeyPattern.exec(key);
      if (object) this.#log?.forget(object[1]!);
    }
    for (const listener of this.#listeners) listener.onKeyChange(key, revision, deleted, kv.value);
  }

  #advance(revision: number): void {
    if (revision <= this.#seen) return;
    this.#seen = revision;
    const ready = this.#waiters.filter((w) => w.revision <= revision);
    this.#waiters = this.#waiters.filter((w) => w.revision > revision);
    for (const w of ready) w.resolve();
  }

  async #caughtUp(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.#seen >= revision) return true;
    return new Promise<boolean>((resolve) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async #restart(): Promise<void> {
    if (this.#stopped) return;
    const old = this.#watcher;
    this.#watcher = undefined;
    this.#connected = false;
    this.#log = undefined;
    await old?.cancel().catch(() => undefined);
    // Until the watch is back, changes fall back to scans and long polls answer 503 rather than
    // "nothing changed": so keep trying, with a growing delay, for as long as etcd is away.
    for (let delayMs = 500; !this.#stopped; delayMs = Math.min(delayMs * 2, maxRestartDelayMs)) {
      try {
        await this.start();
        break;
      } catch (err) {
        this.#logger.error({ err, retryInMs: delayMs }, 'Failed to restart the change feed; changes fall back to scans until it is back');
        await sleep(delayMs, undefined, { ref: false });
      }
    }
    for (const listener of this.#listeners) listener.onRestart();
  }
}
