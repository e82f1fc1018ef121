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

  /** Takes a place for one long poll of `deviceId`: its release function, or undefined at the bound. */
  tryAcquire(deviceId: string): (() => void) | undefined {
    const open = this.openFor(deviceId);
    if (open >= this.perDevice) return undefined;
    this.#open.set(deviceId, open + 1);
    let released = false;
    return () => {
      // Idempotent, so a route may release on both `close` and its own end.
      if (released) return;
      released = true;
      const left = this.openFor(deviceId) - 1;
      if (left <= 0) this.#open.delete(deviceId);
      else this.#open.set(deviceId, left);
    };
  }
}
