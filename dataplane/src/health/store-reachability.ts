// Whether the stores answer: a round trip to each every few seconds (with a timeout), so that
// /readyz can say "reachable" from a recent success without touching the stores itself, and
// /healthz/deep can make a fresh round trip on demand.
import { withTimeout } from './timeout.ts';

/** A store and how to make one cheap round trip to it. */
export interface StoreRoundTrip {
  name: string;
  roundTrip(): Promise<void>;
}

/** The outcome of one round trip. */
export interface RoundTripResult {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

/** Readiness of one store. */
export interface StoreReadiness {
  name: string;
  ok: boolean;
  error?: string;
}

export interface StoreReachabilityOptions {
  intervalMs: number;
  timeoutMs: number;
  /** A store whose last success is older than this is not reachable. */
  staleAfterMs: number;
}

/** Tracks the last successful round trip to each store. */
export class StoreReachability {
  readonly #stores: readonly StoreRoundTrip[];
  readonly #options: StoreReachabilityOptions;
  readonly #lastOk = new Map<string, number>();
  readonly #lastError = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(stores: readonly StoreRoundTrip[], options: StoreReachabilityOptions) {
    this.#stores = stores;
    this.#options = options;
  }

  /** Records that every store answered just now (start-up has just reached them). */
  markAllReachable(): void {
    for (const s of this.#stores) this.#lastOk.set(s.name, performance.now());
  }

  /** Starts the periodic round trips. */
  start(): void {
    this.#timer = setInterval(() => {
      if (this.#checking) return;
      this.#checking = true;
      void this.roundTrips().finally(() => {
        this.#checking = false;
      });
    }, this.#options.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round trip to each store now, in parallel, each bounded by the timeout. */
  async roundTrips(): Promise<RoundTripResult[]> {
    return Promise.all(
      this.#stores.map(async (store) => {
        const started = performance.now();
        try {
          await withTimeout(store.roundTrip(), this.#options.timeoutMs);
          this.#lastOk.set(store.name, performance.now());
          this.#lastError.delete(store.name);
          return { name: store.name, ok: true, ms: Math.round((performance.now() - started) * 10) / 10 };
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          this.#lastError.set(store.name, error);
          return { name: store.name, ok: false, ms: Math.round((performance.now() - started) * 10) / 10, error };
        }
      }),
    );
  }

  /** Each store is ready when its last success is recent. */
  readiness(): StoreReadiness[] {
    const now = performance.now();
    return this.#stores.map(({ name }) => {
      const at = this.#lastOk.get(name);
      if (at !== undefined && now - at <= this.#options.staleAfterMs) return { name, ok: true };
      const since = at === undefined ? 'never answered' : `no successful round trip for ${Math.round((now - at) / 1000)} s`;
      const last = this.#lastError.get(name);
      return { name, ok: false, error: last === undefined ? since : `${since}; last error: ${last}` };
    });
  }
}
