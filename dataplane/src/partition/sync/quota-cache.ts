// Users' storage quotas as uploads read them: each process keeps what it read for a few seconds,
// so that an upload does not read the user's record first (ADR 24). A quota set through this
// process applies at once; one set through another applies here within `quotaCacheMillis`.
import type { MetadataStore } from '../../stores/metadata-store.ts';

/** How long a process uses a quota it read before reading it again. */
export const quotaCacheMillis = 5000;

const cacheLimit = 50_000;

/** A user's quota in bytes; null when unlimited. */
export type Quota = number | null;

/** Quotas read recently, per user. */
export class QuotaCache {
  readonly #metadata: Pick<MetadataStore, 'getUser'>;
  readonly #now: () => number;
  readonly #quotas = new Map<string, { quota: Quota; expires: number }>();
  readonly #pending = new Map<string, Promise<Quota>>();

  constructor(metadata: Pick<MetadataStore, 'getUser'>, now: () => number = Date.now) {
    this.#metadata = metadata;
    this.#now = now;
  }

  /** The quota of `userId` (null: unlimited, also for a user with no record). */
  async quotaOf(userId: string): Promise<Quota> {
    const cached = this.#quotas.get(userId);
    if (cached !== undefined && cached.expires > this.#now()) return cached.quota;
    let pending = this.#pending.get(userId);
    if (pending === undefined) {
      pending = this.#metadata
        .getUser(userId)
        .then((user) => {
          const quota = user?.quotaBytes ?? null;
          this.set(userId, quota);
          return quota;
        })
        .finally(() => this.#pending.delete(userId));
      this.#pending.set(userId, pending);
    }
    return pending;
  }

  /** Records a quota this process just set (or read). */
  set(userId: string, quota: Quota): void {
    if (this.#quotas.size >= cacheLimit) this.#quotas.clear();
    this.#quotas.set(userId, { quota, expires: this.#now() + quotaCacheMillis });
  }
}
