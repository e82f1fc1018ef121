// Long polls of the partition: `GET /v1/notifications` (every object of the caller's user)
// and `GET /v1/objects/{id}/changes?wait=` (one object). Both wait on the process's one etcd
// watch (the change feed) through a waiter index keyed by object; polls keep no timer and no
// closure of their own (one shared expiry wheel, one shared `close` listener). See ADR 6.
import type { Etcd3 } from 'etcd3';
import type { NextFunction, Response } from 'express';
import type { Logger } from 'pino';
import { rangesContain, slotOf, type SlotRange } from '../../slots.ts';
import type { MetadataStore, Role } from '../../stores/metadata-store.ts';
import { ApiError } from '@meshwork/contract';
import type { ChangeFeed, ChangeListener } from '../change-feed.ts';
import { ExpiryWheel } from './expiry-wheel.ts';
import { ForeignHeads } from './foreign-heads.ts';
import { Subscriptions } from './subscriptions.ts';
import { liveObjects, UserFeed, type FeedRead, type ObjectNotice } from './user-feed.ts';

/** The longest a poll may wait, in seconds. */
export const maxWaitSeconds = 60;
/** How long a notification poll waits when the client does not say. */
export const defaultNotificationWaitSeconds = 30;

const tickMillis = 100;
/** A user's feed outlives its last poll by this much, so that the next poll finds it warm. */
const idleFeedSeconds = 10 * 60;
const evictEveryMillis = 60_000;
/** Heads read together with the membership index in one transaction (etcd allows 128 operations). */
const headsWithIndex = 127;
/**
 * Exact reads in flight at once. Reads come in herds (every device polling again after a
 * restart, every feed distrusted after the change feed restarted); a bound spreads them out.
 */
const maxConcurrentReads = 64;

/** 503 `store_unavailable`: the answer a poll cannot give while etcd is out of reach. */
function storeUnavailable(): ApiError {
  return new ApiError('store_unavailable', 'etcd is out of reach, so whether anything changed is unknown; retry', {
    headers: { 'Retry-After': '1' },
  });
}

/** What the per-object changes route hands a waiting poll; a shared object, not one per poll. */
export interface ObjectPollHandler<Q> {
  /** Runs the query: `changed` false means nothing to send yet; `seen` is the revision it read at. */
  run(query: Q): Promise<{ body: unknown; changed: boolean; seen: number }>;
  /** The answer when the wait ran out with nothing to send. */
  timedOut(query: Q): unknown;
}

/** Where a per-client limit on concurrent long polls plugs in (the throttling module). */
export interface LongPollAdmission {
  /** Called as a poll is admitted; throws (an ApiError, 429 with Retry-After) to refuse it. */
  acquire(clientId: string): void;
  /** Called exactly once for every admitted poll, however it ends. */
  release(clientId: string): void;
}

const admitEveryPoll: LongPollAdmission = { acquire: () => undefined, release: () => undefined };

/** Who is polling: the throttling key and, for notifications, whose feed. */
export interface PollCaller {
  userId: string;
  /** The device, or the user itself for an account token. */
  clientId: string;
}

abstract class Poll {
  expiryBucket = -1;
  done = false;
  readonly res: Response;
  readonly next: NextFunction;
  readonly clientId: string;

  constructor(res: Response, next: NextFunction, clientId: string) {
    this.res = res;
    this.next = next;
    this.clientId = clientId;
  }
}

class NotificationPoll extends Poll {
  readonly entry: FeedEntry;
  readonly cursor: number;
  /** Changes at or below this revision are known not to concern the poll. */
  threshold: number;
  /** False for wait=0: answer after one look. */
  readonly waits: boolean;
  /** Waiting for the feed's next exact read (otherwise parked until a change). */
  pending = false;
  /** Asked without a cursor: answered with the user's live objects after one look. */
  readonly initial: boolean;

  constructor(res: Response, next: NextFunction, clientId: string, entry: FeedEntry, cursor: number | undefined, waits: boolean) {
    super(res, next, clientId);
    this.entry = entry;
    this.initial = cursor === undefined;
    this.cursor = cursor ?? 0;
    this.threshold = this.cursor;
    this.waits = waits && !this.initial;
  }
}

class ObjectPoll extends Poll {
  readonly objectId: string;
  readonly query: unknown;
  readonly handler: ObjectPollHandler<unknown>;
  /** The revision the last run read at; older changes are in its answer. */
  seen = 0;
  /** A change arrived since the last run started. */
  dirty = false;
  running = false;

  constructor(res: Response, next: NextFunction, clientId: string, objectId: string, query: unknown, handler: ObjectPollHandler<unknown>) {
    super(res, next, clientId);
    this.objectId = objectId;
    this.query = query;
    this.handler = handler;
  }
}

/** A user's feed with the polls waiting on it. */
class FeedEntry {
  readonly feed: UserFeed;
  /** Open polls of the user, parked or pending: one poll as itself, more in a Set (most users poll from one device at a time). */
  #polls: NotificationPoll | Set<NotificationPoll> | undefined;
  reading = false;
  again = false;
  /** Member objects kept by other partitions: while there are any, answers need a read. */
  foreign = 0;
  /** Seconds since the process started (a small integer, unlike Date.now()). */
  lastUsed = 0;

  constructor(userId: string) {
    this.feed = new UserFeed(userId);
  }

  get pollCount(): number {
    const polls = this.#polls;
    return polls === undefined ? 0 : polls instanceof Set ? polls.size : 1;
  }

  /** The open polls, copied (callers may finish polls while they walk them). */
  polls(): NotificationPoll[] {
    const polls = this.#polls;
    return polls === undefined ? [] : polls instanceof Set ? [...polls] : [polls];
  }

  addPoll(poll: NotificationPoll): void {
    const polls = this.#polls;
    if (polls === undefined) this.#polls = poll;
    else if (polls instanceof Set) polls.add(poll);
    else if (polls !== poll) this.#polls = new Set([polls, poll]);
  }

  deletePoll(poll: NotificationPoll): void {
    const polls = this.#polls;
    if (polls === poll) this.#polls = undefined;
    else if (polls instanceof Set) {
      polls.delete(poll);
      if (polls.size === 0) this.#polls = undefined;
    }
  }
}

const startedAt = Date.now();
function uptimeSeconds(): number {
  return Math.floor((Date.now() - startedAt) / 1000);
}

/** Where a response keeps its poll: res.locals already exists, so no new property is added to res. */
type PollResponse = Response & { locals: { longPoll?: Poll } };

const objectKeyPattern = /^\/mw\/s\/\d{4}\/o\/([A-Za-z0-9_-]+)(\/head)?$/;
const membershipKeyPattern = /^\/mw\/s\/\d{4}\/u\/([A-Za-z0-9_-]+)\/m\/([A-Za-z0-9_-]+)$/;

/** A `close` listener shared by all responses; it finds the poll on the response itself. */
function closeListener(finish: (poll: Poll) => void): (this: PollResponse) => void {
  return function (this: PollResponse) {
    const poll = this.locals.longPoll;
    if (poll !== undefined && !poll.done) finish(poll);
  };
}

/** The 503 every poll gets while the process drains. */
function drainingError(retryAfterSeconds: number): ApiError {
  return new ApiError('draining', 'this process is shutting down; poll again', { headers: { 'Retry-After': String(retryAfterSeconds) } });
}

export interface LongPollsOptions {
  metadata: MetadataStore;
  etcd: Etcd3;
  changeFeed: ChangeFeed;
  /** The slots this process owns: objects elsewhere are watched one by one. */
  slots: readonly SlotRange[];
  logger: Logger;
  /** A per-client limit on concurrent polls; none when absent. */
  admission?: LongPollAdmission;
}

/** Every long poll of this process, and what wakes them. */
export class LongPolls implements ChangeListener {
  readonly #metadata: MetadataStore;
  readonly #changeFeed: ChangeFeed;
  readonly #admission: LongPollAdmission;
  readonly #slots: readonly SlotRange[];
  readonly #logger: Logger;
  readonly #foreign: ForeignHeads;
  readonly #polls = new Set<Poll>();
  readonly #wheel = new ExpiryWheel<Poll>(tickMillis, Date.now());
  readonly #subscriptions = new Subscriptions<FeedEntry | ObjectPoll>();
  readonly #feeds = new Map<string, FeedEntry>();
  readonly #timer: NodeJS.Timeout;
  readonly #onClose: (this: PollResponse) => void;
  #draining = false;
  #retryAfterSeconds = 1;
  #readsInFlight = 0;
  readonly #readQueue: (() => void)[] = [];
  #nextEviction = Date.now() + evictEveryMillis;

  constructor(options: LongPollsOptions) {
    this.#metadata = options.metadata;
    this.#changeFeed = options.changeFeed;
    this.#admission = options.admission ?? admitEveryPoll;
    this.#slots = options.slots;
    this.#logger = options.logger;
    this.#foreign = new ForeignHeads(
      options.etcd,
      options.logger,
      (objectId, revision) => this.#onObjectChange(objectId, revision, true),
      (objectId) => this.#onWatchLost(objectId),
    );
    // One listener function for every poll's response: a client that goes away frees its poll at once.
    this.#onClose = closeListener((poll) => this.#finish(poll));
    this.#timer = setInterval(() => this.#tick(), tickMillis);
    this.#timer.unref();
    options.changeFeed.listen(this);
  }

  /** Polls currently open (admitted and not yet answered), for the metrics gauge. */
  get open(): number {
    return this.#polls.size;
  }

  /** Answers every open poll with 503 `draining` and Retry-After, and every new one the same. */
  drain(retryAfterSeconds: number): void {
    this.#draining = true;
    this.#retryAfterSeconds = retryAfterSeconds;
    for (const poll of [...this.#polls]) {
      // The connection would otherwise idle in keep-alive and hold up the server's close.
      if (!poll.res.headersSent) poll.res.setHeader('Connection', 'close');
      this.#fail(poll, drainingError(retryAfterSeconds));
    }
  }

  /** Stops the timer and the foreign watches (the process is exiting). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#foreign.close();
  }

  /**
   * Serves `GET /v1/notifications`: answers at once when an object of the caller's user
   * changed after `cursor`, otherwise when one does or after `waitSeconds` with the same
   * cursor. Without a cursor (undefined), answers at once with every live object of the user
   * and the revision they were read at. Returns as soon as the poll is answered or waiting;
   * later failures go to `next`.
   */
  notifications(caller: PollCaller, cursor: number | undefined, waitSeconds: number, res: Response, next: NextFunction): void {
    let entry = this.#feeds.get(caller.userId);
    if (entry === undefined) {
      entry = new FeedEntry(caller.userId);
      this.#feeds.set(caller.userId, entry);
    }
    entry.lastUsed = uptimeSeconds();
    const poll = new NotificationPoll(res, next, caller.clientId, entry, cursor, waitSeconds > 0);
    if (!this.#admit(poll)) return;
    const feed = entry.feed;
    poll.threshold = feed.thresholdFor(poll.cursor);
    // Memory may answer "nothing yet" only for a cursor this process has seen issued or passed.
    const quiet =
      !poll.initial &&
      this.#changeFeed.connected &&
      poll.cursor <= Math.max(feed.mergedAt, feed.lastEvent) &&
      feed.quietAfter(poll.threshold);
    if (quiet && !poll.waits) {
      this.#answer(poll, { objects: [], cursor: String(cursor) });
      return;
    }
    if (poll.waits) this.#wheel.add(poll, Date.now() + waitSeconds * 1000);
    entry.addPoll(poll);
    if (quiet) return;
    poll.pending = true;
    this.#startRead(entry);
  }

  /**
   * Serves a waiting `GET /v1/objects/{id}/changes`: runs `handler.run(query)`, and again
   * after each change of the object, until it has something to send or `waitSeconds` pass.
   */
  objectChanges<Q>(
    caller: PollCaller,
    objectId: string,
    query: Q,
    handler: ObjectPollHandler<Q>,
    waitSeconds: number,
    res: Response,
    next: NextFunction,
  ): void {
    const poll = new ObjectPoll(res, next, caller.clientId, objectId, query, handler);
    if (!this.#admit(poll)) return;
    this.#wheel.add(poll, Date.now() + waitSeconds * 1000);
    // Subscribed before the first run, so a change while it runs is not missed.
    this.#subscribe(objectId, poll, 0);
    void this.#runObjectPoll(poll);
  }

  /** Every key change of the process's watch. */
  onKeyChange(key: string, revision: number, deleted: boolean, value: Buffer): void {
    if (this.#polls.size === 0 && this.#feeds.size === 0) return;
    const object = objectKeyPattern.exec(key);
    if (object) {
      this.#onObjectChange(object[1]!, revision, object[2] !== undefined);
      return;
    }
    const membership = membershipKeyPattern.exec(key);
    if (membership)
      this.#onMembershipChange(membership[1]!, membership[2]!, deleted ? undefined : (value.toString('utf8') as Role), revision);
  }

  /** The change feed restarted and missed changes: every feed reads again, every object poll runs again. */
  onRestart(): void {
    for (const entry of this.#feeds.values()) this.#distrust(entry);
    for (const poll of this.#polls) {
      if (poll instanceof ObjectPoll) this.#objectPollChanged(poll, Number.MAX_SAFE_INTEGER);
    }
  }

  // --- admission and the end of a poll: the one place where a poll starts and stops counting.

  /** False when the client left while the request was being checked: nothing to wait for. */
  #admit(poll: Poll): boolean {
    if (this.#draining) throw drainingError(this.#retryAfterSeconds);
    if (poll.res.closed) return false;
    this.#admission.acquire(poll.clientId);
    this.#polls.add(poll);
    (poll.res as PollResponse).locals.longPoll = poll;
    // `on`, not `once`: once wraps every listener in a bound function of its own.
    poll.res.on('close', this.#onClose);
    return true;
  }

  #finish(poll: Poll): void {
    poll.done = true;
    this.#polls.delete(poll);
    this.#wheel.remove(poll);
    if (poll instanceof NotificationPoll) {
      poll.entry.deletePoll(poll);
      poll.entry.lastUsed = uptimeSeconds();
    } else if (poll instanceof ObjectPoll) {
      this.#unsubscribe(poll.objectId, poll);
    }
    this.#admission.release(poll.clientId);
  }

  #answer(poll: Poll, body: unknown): void {
    if (poll.done) return;
    this.#finish(poll);
    poll.res.setHeader('Cache-Control', 'private, no-cache').json(body);
  }

  #fail(poll: Poll, err: unknown): void {
    if (poll.done) return;
    this.#finish(poll);
    poll.next(err);
  }

  // --- notification polls

  #startRead(entry: FeedEntry): void {
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    // After the current batch of watch events, so that one read serves all of them.
    queueMicrotask(() => void this.#readLoop(entry));
  }

  async #readLoop(entry: FeedEntry): Promise<void> {
    try {
      do {
        entry.again = false;
        const waiting = entry.polls().filter((poll) => poll.pending);
        for (const poll of waiting) poll.pending = false;
        // Memory answers when the one watch delivered every change that could concern the
        // poll (no object of another partition), up to `seen`: no read, no etcd round trip.
        const seen = this.#changeFeed.seen;
        const batch: NotificationPoll[] = [];
        for (const poll of waiting) {
          const complete = entry.foreign === 0 && this.#changeFeed.connected && entry.feed.trusts(poll.threshold);
          if (complete && seen >= poll.threshold) this.#settle(poll, seen, undefined);
          else batch.push(poll);
        }
        if (batch.length === 0) continue;
        let read: FeedRead | undefined;
        try {
          read = await this.#exactRead(entry);
        } catch (err) {
          for (const poll of batch) this.#fail(poll, err);
          continue;
        }
        if (read === undefined) {
          // Memory was distrusted while reading: read again.
          for (const poll of batch) poll.pending = true;
          entry.again = true;
          continue;
        }
        for (const poll of batch) this.#settle(poll, read.revision, read);
      } while (entry.again);
    } finally {
      entry.reading = false;
    }
  }

  /**
   * Answers a poll from a read (or from memory, complete up to `revision`, when `read` is
   * undefined), or parks it until something newer than that happens.
   */
  #settle(poll: NotificationPoll, revision: number, read: FeedRead | undefined): void {
    if (poll.done) return;
    if (poll.initial) {
      const live = read === undefined ? poll.entry.feed.members : read.memberships;
      this.#answer(poll, { objects: liveObjects(live), cursor: String(revision) });
      return;
    }
    if (read !== undefined && poll.cursor > read.revision) {
      const message = 'the cursor is not from this mesh (or from before a restore); list the objects again and poll with the new cursor';
      this.#fail(poll, new ApiError('cursor_expired', message, { details: { relist: true } }));
      return;
    }
    const objects: ObjectNotice[] =
      read === undefined ? poll.entry.feed.memoryChangesSince(poll.cursor) : poll.entry.feed.changesSince(poll.cursor, read);
    if (objects.length > 0) {
      this.#answer(poll, { objects, cursor: String(revision) });
      return;
    }
    if (!poll.waits) {
      this.#answer(poll, { objects, cursor: String(poll.cursor) });
      return;
    }
    const feed = poll.entry.feed;
    poll.threshold = Math.max(poll.threshold, revision);
    feed.recordQuiet(poll.cursor, poll.threshold);
    if (feed.lastEvent > poll.threshold) {
      poll.pending = true;
      poll.entry.again = true;
    }
  }

  /**
   * Reads the user's membership index with the heads of the objects already known in one
   * transaction; objects seen for the first time are subscribed to before their heads are
   * read, so that no change falls between the read and the watch. Undefined when memory was
   * distrusted meanwhile.
   */
  async #exactRead(entry: FeedEntry): Promise<FeedRead | undefined> {
    if (this.#readsInFlight < maxConcurrentReads) this.#readsInFlight++;
    // Otherwise wait for a read to end and hand its place over.
    else await new Promise<void>((resolve) => this.#readQueue.push(resolve));
    try {
      return await this.#readFeed(entry);
    } finally {
      const next = this.#readQueue.shift();
      if (next !== undefined) next();
      else this.#readsInFlight--;
    }
  }

  async #readFeed(entry: FeedEntry): Promise<FeedRead | undefined> {
    const feed = entry.feed;
    const generation = feed.generation;
    const known = [...feed.members.keys()].slice(0, headsWithIndex);
    const read = await this.#metadata.readMembershipsAndHeads(feed.userId, known);
    if (feed.generation !== generation) return undefined;
    const { subscribe, unsubscribe } = feed.mergeMemberships(read.memberships, read.revision);
    for (const objectId of subscribe) this.#subscribe(objectId, entry, read.revision);
    for (const objectId of unsubscribe) this.#unsubscribe(objectId, entry);
    const unread = [...read.memberships.keys()].filter((id) => !read.heads.has(id));
    if (unread.length > 0) {
      for (const [id, revision] of await this.#metadata.readHeads(unread)) read.heads.set(id, revision);
      if (feed.generation !== generation) return undefined;
    }
    // Heads read after subscribing cover what changed before the watch saw the object.
    feed.mergeHeads(read.heads);
    return read;
  }

  #onObjectChange(objectId: string, revision: number, head: boolean): void {
    for (const subscriber of this.#subscriptions.subscribersOf(objectId)) {
      if (subscriber instanceof FeedEntry) {
        // Notifications are about entries and membership; a rename alone wakes nobody.
        if (!head) continue;
        subscriber.feed.onObjectChange(objectId, revision);
        this.#wake(subscriber);
      } else {
        this.#objectPollChanged(subscriber, revision);
      }
    }
  }

  #onMembershipChange(userId: string, objectId: string, role: Role | undefined, revision: number): void {
    const entry = this.#feeds.get(userId);
    if (entry === undefined) return;
    const action = entry.feed.onMembership(objectId, role, revision);
    if (action === 'subscribe') this.#subscribe(objectId, entry, revision);
    else if (action === 'unsubscribe') this.#unsubscribe(objectId, entry);
    this.#wake(entry);
  }

  /** Moves the parked polls a newer change may concern to the next read. */
  #wake(entry: FeedEntry): void {
    const lastEvent = entry.feed.lastEvent;
    let woken = false;
    for (const poll of entry.polls()) {
      if (poll.pending || poll.threshold >= lastEvent) continue;
      poll.pending = true;
      woken = true;
    }
    if (woken) this.#startRead(entry);
  }

  #distrust(entry: FeedEntry): void {
    entry.feed.invalidate();
    for (const poll of entry.polls()) poll.pending = true;
    if (entry.pollCount > 0) this.#startRead(entry);
  }

  #onWatchLost(objectId: string): void {
    for (const subscriber of this.#subscriptions.subscribersOf(objectId)) {
      if (subscriber instanceof FeedEntry) this.#distrust(subscriber);
    }
  }

  // --- object polls

  #objectPollChanged(poll: ObjectPoll, revision: number): void {
    if (poll.done || revision <= poll.seen) return;
    poll.dirty = true;
    if (!poll.running) void this.#runObjectPoll(poll);
  }

  async #runObjectPoll(poll: ObjectPoll): Promise<void> {
    poll.running = true;
    try {
      while (!poll.done) {
        poll.dirty = false;
        const result = await poll.handler.run(poll.query);
        if (poll.done) return;
        if (result.changed) {
          this.#answer(poll, result.body);
          return;
        }
        poll.seen = Math.max(poll.seen, result.seen);
        if (!poll.dirty) return;
      }
    } catch (err) {
      this.#fail(poll, err);
    } finally {
      poll.running = false;
    }
  }

  // --- subscriptions, expiry, eviction

  #isLocal(objectId: string): boolean {
    return rangesContain(this.#slots, slotOf(objectId));
  }

  #subscribe(objectId: string, subscriber: FeedEntry | ObjectPoll, knownUpTo: number): void {
    const first = this.#subscriptions.subscribe(objectId, subscriber);
    if (this.#isLocal(objectId)) return;
    if (subscriber instanceof FeedEntry) subscriber.foreign++;
    if (first) this.#foreign.watch(objectId, knownUpTo);
  }

  #unsubscribe(objectId: string, subscriber: FeedEntry | ObjectPoll): void {
    const last = this.#subscriptions.unsubscribe(objectId, subscriber);
    if (this.#isLocal(objectId)) return;
    if (subscriber instanceof FeedEntry) subscriber.foreign--;
    if (last) this.#foreign.unwatch(objectId);
  }

  #tick(): void {
    const now = Date.now();
    for (const poll of this.#wheel.expire(now)) {
      if (poll.done) continue;
      // Cut off from etcd, the watch cannot tell that nothing changed: an empty answer could be wrong.
      if (!this.#changeFeed.connected) this.#fail(poll, storeUnavailable());
      else if (poll instanceof NotificationPoll) this.#answer(poll, { objects: [], cursor: String(poll.cursor) });
      else if (poll instanceof ObjectPoll) this.#answer(poll, poll.handler.timedOut(poll.query));
    }
    if (now >= this.#nextEviction) {
      this.#nextEviction = now + evictEveryMillis;
      this.#evictIdleFeeds();
    }
  }

  #evictIdleFeeds(): void {
    const now = uptimeSeconds();
    let evicted = 0;
    for (const [userId, entry] of this.#feeds) {
      if (entry.reading || entry.pollCount > 0 || now - entry.lastUsed < idleFeedSeconds) continue;
      for (const objectId of entry.feed.members.keys()) this.#unsubscribe(objectId, entry);
      this.#feeds.delete(userId);
      evicted++;
    }
    if (evicted > 0) this.#logger.debug({ evicted, feeds: this.#feeds.size }, 'Evicted idle notification feeds');
  }
}
