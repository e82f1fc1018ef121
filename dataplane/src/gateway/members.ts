// Which members (replicas) of a partition are ready to take a request. Each member named by the
// slot map has its `/readyz` asked every probe interval; a member that refused a connection or
// said it is draining is set aside at once, until a probe finds it ready again. A member not yet
// probed is used only when no member is known to be ready (a replica registers its slots before
// it listens). The choice among ready members is round robin.
import type { Member, PartitionView } from './slot-table.ts';

/** What is known of a member. */
export type MemberState = 'ready' | 'unready' | 'unknown';

/** The readiness of every member, by URL, and the choice of one for a request. */
export class MemberStates {
  readonly #states = new Map<string, MemberState>();
  readonly #next = new Map<string, number>();

  /** The state of the member at `url`. */
  stateOf(url: string): MemberState {
    return this.#states.get(url) ?? 'unknown';
  }

  /** Records what a probe or a request found. */
  set(url: string, state: MemberState): void {
    this.#states.set(url, state);
  }

  /** Forgets members no longer in the slot map. */
  retain(urls: ReadonlySet<string>): void {
    for (const url of this.#states.keys()) if (!urls.has(url)) this.#states.delete(url);
  }

  /** A member of `partition` to send a request to, other than those in `exclude`; ready ones first. */
  pick(partition: PartitionView, exclude: ReadonlySet<string> = new Set()): Member | undefined {
    const candidates = partition.members.filter((m) => !exclude.has(m.url));
    const ready = candidates.filter((m) => this.stateOf(m.url) === 'ready');
    const pool = ready.length > 0 ? ready : candidates.filter((m) => this.stateOf(m.url) === 'unknown');
    if (pool.length === 0) return undefined;
    const turn = this.#next.get(partition.name) ?? 0;
    this.#next.set(partition.name, turn + 1);
    return pool[turn % pool.length];
  }

  /** Whether `partition` has a member that may take requests (ready, or not yet probed). */
  serves(partition: PartitionView): boolean {
    return partition.members.some((m) => this.stateOf(m.url) !== 'unready');
  }
}
