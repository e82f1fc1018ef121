// Static bounds per user and per device: requests per second with a burst, and bytes per
// second of request and response bodies. A device's request counts against both its own
// buckets and its user's, so one device cannot starve its siblings and a user with many
// devices still has one total. Memory is bounded: a client whose buckets have refilled is
// forgotten (a fresh full bucket is the same thing), and a table at its cap forgets its
// least recently seen client.
import { formatByteSize } from '../../byte-size.ts';
import type { ThrottleConfig } from '../../config.ts';
import { fullBucket, isFull, take, waitFor, type BucketLimit, type BucketState } from './token-bucket.ts';

/** Why a request was throttled; the `reason` label of meshwork_throttled_requests_total. */
export type ThrottleReason =
  'user_rate' | 'device_rate' | 'user_bytes' | 'device_bytes' | 'long_polls' | 'entry_size' | 'concurrency' | 'event_loop_lag';

/** Every reason, to initialise the counter's series. */
export const throttleReasons: readonly ThrottleReason[] = [
  'user_rate',
  'device_rate',
  'user_bytes',
  'device_bytes',
  'long_polls',
  'entry_size',
  'concurrency',
  'event_loop_lag',
];

/** The caller a static bound applies to. */
export interface Client {
  userId: string;
  deviceId?: string;
}

/** A refused request: why, and how long until it would be admitted. */
export interface Refusal {
  reason: ThrottleReason;
  retryAfterMs: number;
  message: string;
}

interface ClientLimit {
  requests: BucketLimit;
  bytes: BucketLimit;
}

interface ClientState {
  requests: BucketState;
  bytes: BucketState;
}

/** The default cap on remembered clients per table (users, devices): about 20 MB each at most. */
export const defaultMaxClients = 100_000;
// Idle clients forgotten per admission: amortised eviction, no timer.
const evictionsPerTouch = 2;

/** One table of clients (users or devices) in least-recently-seen order. */
class ClientTable {
  readonly limit: ClientLimit;
  readonly #clients = new Map<string, ClientState>();
  readonly #maxClients: number;

  constructor(limit: ClientLimit, maxClients: number) {
    this.limit = limit;
    this.#maxClients = maxClients;
  }

  get size(): number {
    return this.#clients.size;
  }

  has(id: string): boolean {
    return this.#clients.has(id);
  }

  /** The client's state, created full if unknown, moved to the most-recently-seen end. */
  touch(id: string, now: number): ClientState {
    let state = this.#clients.get(id);
    if (state === undefined) {
      state = { requests: fullBucket(this.limit.requests, now), bytes: fullBucket(this.limit.bytes, now) };
    } else {
      this.#clients.delete(id);
    }
    this.#evict(now);
    this.#clients.set(id, state);
    return state;
  }

  /** The client's state if known, without touching it. */
  peek(id: string): ClientState | undefined {
    return this.#clients.get(id);
  }

  #evict(now: number): void {
    // At the cap, the least recently seen client goes, whatever its state.
    for (const id of this.#clients.keys()) {
      if (this.#clients.size < this.#maxClients) break;
      this.#clients.delete(id);
    }
    let looked = 0;
    for (const [id, state] of this.#clients) {
      if (looked++ >= evictionsPerTouch) break;
      if (isFull(state.requests, this.limit.requests, now) && isFull(state.bytes, this.limit.bytes, now)) this.#clients.delete(id);
    }
  }
}

/** The static per-user and per-device bounds of one process. */
export class ClientLimits {
  readonly #users: ClientTable;
  readonly #devices: ClientTable;
  readonly #config: ThrottleConfig;

  constructor(config: ThrottleConfig, maxClients = defaultMaxClients) {
    this.#config = config;
    // A byte bucket holds one second of its rate; the debt rule lets any single body through.
    this.#users = new ClientTable(
      {
        requests: { perSecond: config.userRequestsPerSecond, capacity: config.userBurst },
        bytes: { perSecond: config.userBytesPerSecond, capacity: config.userBytesPerSecond },
      },
      maxClients,
    );
    this.#devices = new ClientTable(
      {
        requests: { perSecond: config.deviceRequestsPerSecond, capacity: config.deviceBurst },
        bytes: { perSecond: config.deviceBytesPerSecond, capacity: config.deviceBytesPerSecond },
      },
      maxClients,
    );
  }

  /** Clients remembered now, per table. */
  get size(): { users: number; devices: number } {
    return { users: this.#users.size, devices: this.#devices.size };
  }

  /** Whether a client's state is remembered (for tests of eviction). */
  remembers(client: Client): boolean {
    return client.deviceId === undefined ? this.#users.has(client.userId) : this.#devices.has(client.deviceId);
  }

  /**
   * Admits one request of `client` at `now`, taking a request token and charging
   * `bodyBytes` (the declared request body), or says why not and for how long.
   */
  admit(client: Client, now: number, bodyBytes = 0): Refusal | undefined {
    const refusal = this.check(client, now);
    if (refusal === undefined) this.charge(client, now, bodyBytes);
    return refusal;
  }

  /** Whether `client` may make a request at `now` (nothing is taken): why not and for how long. */
  check(client: Client, now: number): Refusal | undefined {
    const user = this.#users.touch(client.userId, now);
    const device = client.deviceId === undefined ? undefined : this.#devices.touch(client.deviceId, now);
    const users = this.#users.limit;
    const devices = this.#devices.limit;
    const waits: [ThrottleReason, number][] = [
      ['user_rate', waitFor(user.requests, users.requests, now, 1)],
      ['user_bytes', waitFor(user.bytes, users.bytes, now, 0)],
    ];
    if (device)
      waits.push(
        ['device_rate', waitFor(device.requests, devices.requests, now, 1)],
        ['device_bytes', waitFor(device.bytes, devices.bytes, now, 0)],
      );
    let worst: [ThrottleReason, number] | undefined;
    for (const wait of waits) if (wait[1] > 0 && (worst === undefined || wait[1] > worst[1])) worst = wait;
    return worst === undefined ? undefined : { reason: worst[0], retryAfterMs: worst[1], message: this.#describe(worst[0], client) };
  }

  /** Takes one request token from `client` and charges `bodyBytes`, after check admitted it. */
  charge(client: Client, now: number, bodyBytes: number): void {
    // check has just touched both: no need to move them again.
    const user = this.#users.peek(client.userId) ?? this.#users.touch(client.userId, now);
    take(user.requests, this.#users.limit.requests, now, 1);
    take(user.bytes, this.#users.limit.bytes, now, bodyBytes);
    if (client.deviceId !== undefined) {
      const device = this.#devices.peek(client.deviceId) ?? this.#devices.touch(client.deviceId, now);
      take(device.requests, this.#devices.limit.requests, now, 1);
      take(device.bytes, this.#devices.limit.bytes, now, bodyBytes);
    }
  }

  /** Charges bytes sent or received after admission (a response, a body of unknown length). */
  chargeBytes(client: Client, now: number, bytes: number): void {
    if (bytes <= 0) return;
    const user = this.#users.peek(client.userId);
    if (user) take(user.bytes, this.#users.limit.bytes, now, bytes);
    const device = client.deviceId === undefined ? undefined : this.#devices.peek(client.deviceId);
    if (device) take(device.bytes, this.#devices.limit.bytes, now, bytes);
  }

  #describe(reason: ThrottleReason, client: Client): string {
    const c = this.#config;
    switch (reason) {
      case 'user_rate':
        return `user ${client.userId} is over its limit of ${c.userRequestsPerSecond} requests per second (burst ${c.userBurst})`;
      case 'device_rate':
        return `device ${client.deviceId} is over its limit of ${c.deviceRequestsPerSecond} requests per second (burst ${c.deviceBurst})`;
      case 'user_bytes':
        return `user ${client.userId} is over its limit of ${formatByteSize(c.userBytesPerSecond)}/s of request and response bodies`;
      case 'device_bytes':
        return `device ${client.deviceId} is over its limit of ${formatByteSize(c.deviceBytesPerSecond)}/s of request and response bodies`;
      default:
        return `throttled (${reason})`;
    }
  }
}
