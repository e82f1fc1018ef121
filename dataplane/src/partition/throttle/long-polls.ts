// The per-device bound on long polls held open at once. A long poll costs no CPU while it
// waits, but a socket, a timer and a watcher each; a client stuck in a reconnect loop would
// otherwise pile them up. Counts live only while polls are open, so memory follows them.

/** Counts of open long polls per device, each bounded. */
export class LongPollLimit {
  readonly perDevice: number;
  readonly #open = new Map<string, number>();

  constructor(perDevice: number) {
    this.perDevice = perDevice;
  }

  /** Long polls open now for `deviceId`. */
  openFor(deviceId: string): number {
    return this.#open.get(deviceId) ?? 0;
  }

  /** Devices with at least one open long poll. */
  get devices(): number {
    return this.#open.size;
  }

  /** Takes a place for one long poll of `deviceId`: false at the bound. Pair with `give`. */
  take(deviceId: string): boolean {
    const open = this.openFor(deviceId);
    if (open >= this.perDevice) return false;
    this.#open.set(deviceId, open + 1);
    return true;
  }

  /** Gives back one place of `deviceId` taken with `take`. */
  give(deviceId: string): void {
    const left = this.openFor(deviceId) - 1;
    if (left <= 0) this.#open.delete(deviceId);
    else this.#open.set(deviceId, left);
  }

  /** Takes a place for one long poll of `deviceId`: its release function, or undefined at the bound. */
  tryAcquire(deviceId: string): (() => void) | undefined {
    if (!this.take(deviceId)) return undefined;
    let released = false;
    return () => {
      // Idempotent, so a route may release on both `close` and its own end.
      if (released) return;
      released = true;
      this.give(deviceId);
    };
  }
}
