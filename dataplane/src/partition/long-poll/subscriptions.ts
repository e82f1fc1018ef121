// The waiter index: which subscribers (long polls on one object, or the notification feed of
// a user) care about which object. Most objects have one subscriber, so a lone subscriber is
// stored as itself and a Set is made only for the second.

/** Subscribers per key, with a cheap representation for the common single subscriber. */
export class Subscriptions<S extends object> {
  readonly #byKey = new Map<string, S | Set<S>>();

  /** Keys with at least one subscriber. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Adds a subscriber to `key`; true if it is the key's first. */
  subscribe(key: string, subscriber: S): boolean {
    const current = this.#byKey.get(key);
    if (current === undefined) {
      this.#byKey.set(key, subscriber);
      return true;
    }
    if (current instanceof Set) current.add(subscriber);
    else if (current !== subscriber) this.#byKey.set(key, new Set([current, subscriber]));
    return false;
  }

  /** Removes a subscriber from `key`; true if the key has none left. */
  unsubscribe(key: string, subscriber: S): boolean {
    const current = this.#byKey.get(key);
    if (current === undefined) return false;
    if (current instanceof Set) {
      current.delete(subscriber);
      if (current.size > 1) return false;
      const [only] = current;
      if (only === undefined) {
        this.#byKey.delete(key);
        return true;
      }
      this.#byKey.set(key, only);
      return false;
    }
    if (current !== subscriber) return false;
    this.#byKey.delete(key);
    return true;
  }

  /** Whether `key` has a subscriber. */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** The subscribers of `key`, copied, so that callbacks may unsubscribe while iterating. */
  subscribersOf(key: string): S[] {
    const current = this.#byKey.get(key);
    if (current === undefined) return [];
    return current instanceof Set ? [...current] : [current];
  }

  /** Every key with a subscriber. */
  keys(): string[] {
    return [...this.#byKey.keys()];
  }
}
