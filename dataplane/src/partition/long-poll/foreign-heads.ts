// Head-key watches for objects in slots this process does not own: a user here may be a
// member of an object another partition keeps, and the process's one watch over its own
// slots does not see that object change. One watcher per such object (never per poll), on the
// etcd client's single watch stream, made while some feed here needs it and cancelled after.
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { objectHeadKey } from '../../stores/keys.ts';

/** Called with the object and the revision of its head's change. */
export type HeadChanged = (objectId: string, revision: number) => void;

interface Watch {
  watcher: Watcher | undefined;
  cancelled: boolean;
}

const retryMillis = 1000;

/** Watches the head keys of foreign objects on demand. */
export class ForeignHeads {
  readonly #etcd: Etcd3;
  readonly #logger: Logger;
  readonly #onChange: HeadChanged;
  readonly #onLost: (objectId: string) => void;
  readonly #watches = new Map<string, Watch>();

  /**
   * `onLost` is called when a watch failed and was made again from the current revision:
   * changes in between may have been missed, so whoever relies on it must read again.
   */
  constructor(etcd: Etcd3, logger: Logger, onChange: HeadChanged, onLost: (objectId: string) => void) {
    this.#etcd = etcd;
    this.#logger = logger;
    this.#onChange = onChange;
    this.#onLost = onLost;
  }

  /** Objects watched. */
  get size(): number {
    return this.#watches.size;
  }

  /** Starts watching an object's head from just after `revision` (0: from now). */
  watch(objectId: string, revision: number): void {
    if (this.#watches.has(objectId)) return;
    const watch: Watch = { watcher: undefined, cancelled: false };
    this.#watches.set(objectId, watch);
    void this.#create(objectId, revision, watch);
  }

  /** Stops watching an object. */
  unwatch(objectId: string): void {
    const watch = this.#watches.get(objectId);
    if (watch === undefined) return;
    this.#watches.delete(objectId);
    watch.cancelled = true;
    void watch.watcher?.cancel().catch(() => undefined);
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    const all = [...this.#watches.values()];
    this.#watches.clear();
    for (const watch of all) watch.cancelled = true;
    await Promise.all(
      all.map(async (w) => {
        await w.watcher?.cancel().catch(() => undefined);
      }),
    );
  }

  async #create(objectId: string, revision: number, watch: Watch): Promise<void> {
    let watcher: Watcher;
    try {
      const builder = this.#etcd.watch().key(objectHeadKey(objectId));
      if (revision > 0) builder.startRevision(String(revision + 1));
      watcher = await builder.create();
    } catch (err) {
      if (watch.cancelled) return;
      this.#logger.warn({ err, objectId }, 'Failed to watch a foreign object; retrying');
      this.#startOver(objectId, watch, retryMillis);
      return;
    }
    if (watch.cancelled) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    watch.watcher = watcher;
    const forward = (kv: { mod_revision: string }): void => this.#onChange(objectId, Number(kv.mod_revision));
    watcher.on('put', forward);
    watcher.on('delete', forward);
    watcher.on('error', (err) => {
      // Typically the start revision was compacted away.
      this.#logger.warn({ err, objectId }, 'Restarted the watch of a foreign object after an error');
      this.#startOver(objectId, watch, 0);
    });
  }

  /** Replaces a failed watch by one from the current revision, and says changes may be lost. */
  #startOver(objectId: string, watch: Watch, delayMs: number): void {
    if (watch.cancelled) return;
    void watch.watcher?.cancel().catch(() => undefined);
    watch.watcher = undefined;
    setTimeout(() => {
      if (watch.cancelled) return;
      void this.#create(objectId, 0, watch);
      this.#onLost(objectId);
    }, delayMs).unref();
  }
}
