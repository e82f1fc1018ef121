// Keeps the gateway's slot table current from etcd watches over the slot map and the per-slot
// owner keys (ADR 34): a listing of both at start (and again after the watch reconnects, errs, or
// a partition answers 421), then every put and delete of an owner record or key as it happens. Requests read the table in memory; the only
// store reads are these listings. An event older than the last listing is ignored, so a listing
// and the watch can interleave without bringing back a record that is gone.
import {
  parseSlotOwnerRecord,
  slotMapPrefix,
  slotOfOwnerKey,
  slotOwnerPrefix,
  type SlotMapRecord,
  type SlotOwnerRecord,
} from '@meshwork/contract';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { buildSlotTable, type RevisionedRecord, type SlotTable } from './slot-table.ts';

// After a failed listing or watch, try again this often at most.
const retryMs = { first: 200, max: 5000 };
// A 421 storm refreshes at most this often.
const refreshEveryMs = 100;

/** The slot map, watched. */
export class SlotWatch {
  readonly #etcd: Etcd3;
  readonly #logger: Logger;
  readonly #onChange: (table: SlotTable) => void;
  readonly #records = new Map<string, RevisionedRecord>();
  readonly #slotOwners = new Map<number, SlotOwnerRecord>();
  #ownerWatcher: Watcher | undefined;
  #table: SlotTable = buildSlotTable([]);
  #listRevision = 0;
  /** The newest revision each watch has delivered (records, owner keys). */
  #recordEventRevision = 0;
  #ownerEventRevision = 0;
  #watcher: Watcher | undefined;
  #loaded = false;
  #watching = false;
  #stopped = false;
  #refresh: Promise<void> | undefined;
  #lastRefresh = 0;
  #rebuildQueued = false;

  constructor(etcd: Etcd3, logger: Logger, onChange: (table: SlotTable) => void = () => undefined) {
    this.#etcd = etcd;
    this.#logger = logger;
    this.#onChange = onChange;
  }

  /** The current table. */
  get table(): SlotTable {
    return this.#table;
  }

  /** Whether the map was listed and the watch is live (the gateway's readiness). */
  status(): { ok: boolean; error?: string } {
    if (!this.#loaded) return { ok: false, error: 'the slot map has not been read from etcd yet' };
    if (!this.#watching) return { ok: false, error: 'the watch of the slot map is reconnecting' };
    return { ok: true };
  }

  /** Starts the watch and lists the map; resolves once both are done, retrying until then. */
  async start(): Promise<void> {
    let wait = retryMs.first;
    for (;;) {
      try {
        await this.#startWatch();
        await this.#list();
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.#logger.warn({ err }, 'Failed to read the slot map from etcd; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(retryMs.max, wait * 2);
      }
    }
  }

  /** Lists the map again (a partition answered 421); concurrent callers share one listing. */
  async refresh(): Promise<void> {
    this.#refresh ??= (async () => {
      const since = Date.now() - this.#lastRefresh;
      if (since < refreshEveryMs) await new Promise((resolve) => setTimeout(resolve, refreshEveryMs - since));
      try {
        await this.#list();
      } finally {
        this.#lastRefresh = Date.now();
        this.#refresh = undefined;
      }
    })();
    return this.#refresh;
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher?.cancel().catch(() => undefined);
    await this.#ownerWatcher?.cancel().catch(() => undefined);
  }

  async #startWatch(): Promise<void> {
    if (this.#ownerWatcher === undefined) await this.#startOwnerWatch();
    // A new watch starts now, not where the last one stopped: the listing after it must apply.
    this.#recordEventRevision = 0;
    const watcher = await this.#etcd.watch().prefix(slotMapPrefix).create();
    if (this.#stopped) {
      await watcher.cancel();
      await this.#ownerWatcher?.cancel();
      return;
    }
    this.#watcher = watcher;
    this.#watching = true;
    watcher.on('put', (kv) => this.#apply(kv, false));
    watcher.on('delete', (kv) => this.#apply(kv, true));
    watcher.on('disconnected', () => {
      this.#watching = false;
    });
    // Resumed after a lost connection: etcd replays from the last revision, but list anyway.
    watcher.on('connected', () => {
      this.#watching = true;
      this.refresh().catch((err: unknown) => this.#logger.warn({ err }, 'Failed to list the slot map after the watch reconnected'));
    });
    watcher.on('error', (err) => {
      if (this.#watcher !== watcher || this.#stopped) return;
      this.#logger.warn({ err }, 'Restarting the slot map watch after an error');
      this.#watching = false;
      this.#watcher = undefined;
      void watcher.cancel().catch(() => undefined);
      void this.start();
    });
  }

  /** Watches the owner keys; after an error, watches again and lists both prefixes, retrying until it can. */
  async #startOwnerWatch(): Promise<void> {
    // Owner keys change only by moves; etcd3 resumes the watch after a lost connection.
    this.#ownerEventRevision = 0;
    const ownerWatcher = await this.#etcd.watch().prefix(slotOwnerPrefix).create();
    this.#ownerWatcher = ownerWatcher;
    ownerWatcher.on('put', (kv) => this.#applyOwner(kv, false));
    ownerWatcher.on('delete', (kv) => this.#applyOwner(kv, true));
    ownerWatcher.on('error', (err) => {
      if (this.#ownerWatcher !== ownerWatcher || this.#stopped) return;
      this.#logger.warn({ err }, 'Restarting the owner key watch after an error');
      this.#ownerWatcher = undefined;
      void ownerWatcher.cancel().catch(() => undefined);
      void (async () => {
        for (let wait = retryMs.first; !this.#stopped; wait = Math.min(retryMs.max, wait * 2)) {
          try {
            await this.#startOwnerWatch();
            await this.#list();
            return;
          } catch (failure) {
            this.#logger.warn({ err: failure }, 'Failed to watch the owner keys again; retrying');
            await new Promise((resolve) => setTimeout(resolve, wait));
          }
        }
      })();
    });
  }

  async #list(): Promise<void> {
    // One transaction: the records and the owner keys at one revision.
    const res = await this.#etcd
      .if(slotMapPrefix, 'Mod', '!=', -1)
      .then(this.#etcd.getAll().prefix(slotMapPrefix), this.#etcd.getAll().prefix(slotOwnerPrefix))
      .commit();
    const revision = Number(res.header.revision);
    if (revision < this.#listRevision) return;
    this.#listRevision = revision;
    // A listing read before an event its watch already delivered is older than the map: each
    // watch delivers in revision order, so that part of the map already has all it could say.
    // (Applying it would undo a move heard meanwhile, a race a 421 during a move triggers.)
    if (revision >= this.#recordEventRevision) {
      this.#records.clear();
      for (const kv of res.responses[0]?.response_range.kvs ?? []) {
        const record = parseRecord(kv);
        if (record) this.#records.set(kv.key.toString('utf8'), { record, revision: Number(kv.mod_revision) });
      }
    }
    if (revision >= this.#ownerEventRevision) {
      this.#slotOwners.clear();
      for (const kv of res.responses[1]?.response_range.kvs ?? []) this.#setOwner(kv, false);
    }
    this.#loaded = true;
    this.#rebuild();
  }

  #apply(kv: IKeyValue, deleted: boolean): void {
    const revision = Number(kv.mod_revision);
    this.#recordEventRevision = Math.max(this.#recordEventRevision, revision);
    if (revision <= this.#listRevision) return;
    const key = kv.key.toString('utf8');
    const record = deleted ? undefined : parseRecord(kv);
    if (record) this.#records.set(key, { record, revision });
    else this.#records.delete(key);
    this.#rebuild();
  }

  #applyOwner(kv: IKeyValue, deleted: boolean): void {
    this.#ownerEventRevision = Math.max(this.#ownerEventRevision, Number(kv.mod_revision));
    if (Number(kv.mod_revision) <= this.#listRevision) return;
    this.#setOwner(kv, deleted);
    // A move's transaction arrives as one event per slot of its chunk: rebuild once for them all.
    if (this.#rebuildQueued) return;
    this.#rebuildQueued = true;
    queueMicrotask(() => {
      this.#rebuildQueued = false;
      this.#rebuild();
    });
  }

  #setOwner(kv: IKeyValue, deleted: boolean): void {
    const slot = slotOfOwnerKey(kv.key.toString('utf8'));
    if (slot === undefined) return;
    const owner = deleted ? undefined : parseSlotOwnerRecord(kv.value.toString('utf8'));
    if (owner === undefined) this.#slotOwners.delete(slot);
    else this.#slotOwners.set(slot, owner);
  }

  #rebuild(): void {
    this.#table = buildSlotTable([...this.#records.values()], this.#slotOwners);
    this.#onChange(this.#table);
  }
}

function parseRecord(kv: IKeyValue): SlotMapRecord | undefined {
  try {
    const value = JSON.parse(kv.value.toString('utf8')) as SlotMapRecord;
    return typeof value === 'object' && value !== null && typeof value.slots === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
