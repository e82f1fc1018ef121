// Which members (replicas) of a partition are ready to take a request. Each member named by the
// slot map has its `/readyz` asked every probe interval; a member that answers not ready,
// refuses a connection or says it is draining is set aside at once, until a probe finds it
// ready again. A probe that gets no answer in time counts only when three in a row do: on a
// busy node a slow `/readyz` is not a member that is down. A member not yet
// probed is used only when no member is known to be ready (a replica registers its slots before
// it listens). The choice among ready members is round robin.
import type { Member, PartitionView } from './slot-table.ts';

/** What is known of a member. */
export type MemberState = 'ready' | 'unready' | 'unknown';

/** What one probe of a member's `/readyz` found. */
export type ProbeResult = 'ready' | 'not_ready' | 'refused' | 'no_answer';

// Probes without an answer in a row after which a member is set aside.
const silentProbesTolerated = 3;

/** The readiness of every member, by URL, and the choice of one for a request. */
export class MemberStates {
  readonly #states = new Map<string, MemberState>();
  readonly #next = new Map<string, number>();
  readonly #silent = new Map<string, number>();

  /** Records a probe's finding. */
  probed(url: string, result: ProbeResult): void {
    if (result === 'no_answer') {
      const silent = (this.#silent.get(url) ?? 0) + 1;
      this.#silent.set(url, silent);
      if (silent >= silentProbesTolerated) this.#states.set(url, 'unready');
      return;
    }
    this.#silent.delete(url);
    this.#states.set(url, result === 'ready' ? 'ready' : 'unready');
  }

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
    for (const url of this.#silent.keys()) if (!urls.has(url)) this.#silent.delete(url);
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
