// The partition's throttle: static bounds per user and per device (429) and the process's
// dynamic limits (503), with their metrics. Requests meet it in throttleGate (gate.ts);
// routes call acquireLongPoll and checkEntrySize themselves. Design and rejected options: ADR 7.
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { formatByteSize } from '../../byte-size.ts';
import type { ThrottleConfig } from '../../config.ts';
import { ApiError } from '@meshwork/contract';
import { AdaptiveConcurrencyLimit, type AdaptiveLimitOptions } from './adaptive-limit.ts';
import { ClientLimits, defaultMaxClients, throttleReasons, type ThrottleReason } from './client-limits.ts';
import { EventLoopLagMonitor } from './event-loop-lag.ts';
import { LongPollLimit } from './long-polls.ts';

/** What a Throttle is built with besides its configuration. */
export interface ThrottleOptions {
  /** The process's metrics registry (prom-client). */
  registry: Registry;
  /** Where refusals are summarised (one line per interval in which there were any). */
  logger?: Logger;
  /** Monotonic milliseconds; tests pass a fake clock. */
  now?: () => number;
  /** Clients remembered per table (users, devices). */
  maxClients?: number;
  /** Tuning of the adaptive limiter beyond its configured bounds (tests, benchmarks). */
  adaptive?: Omit<AdaptiveLimitOptions, 'min' | 'max'>;
}

/** Retry-After of an overload refusal: overload is short-lived by construction (the limit adapts within a second). */
export const overloadRetryAfterSeconds = 1;
// Refusals are summarised, not logged one by one: under overload a line per refusal would
// cost more than the refusal itself.
const summaryIntervalMs = 10_000;
// A device at its long-poll bound usually has a poll that its own client abandoned; it ends
// within one wait period, and the client's retry is cheap.
const longPollRetryAfterSeconds = 1;

/** Static and dynamic request limits of one partition process. */
export class Throttle {
  readonly config: ThrottleConfig;
  readonly clients: ClientLimits;
  readonly concurrency: AdaptiveConcurrencyLimit;
  readonly longPolls: LongPollLimit;
  readonly eventLoop: EventLoopLagMonitor;
  readonly now: () => number;
  readonly #throttled: Counter<'reason'>;
  readonly #logger: Logger | undefined;
  #refusedSinceSummary: Partial<Record<ThrottleReason, number>> = {};
  #summaryTimer: NodeJS.Timeout | undefined;

  constructor(config: ThrottleConfig, options: ThrottleOptions) {
    this.config = config;
    this.now = options.now ?? (() => performance.now());
    this.clients = new ClientLimits(config, options.maxClients ?? defaultMaxClients);
    this.eventLoop = new EventLoopLagMonitor(config.eventLoopLagMs);
    const eventLoop = this.eventLoop;
    this.concurrency = new AdaptiveConcurrencyLimit(
      { utilization: () => eventLoop.utilization, ...options.adaptive, min: config.concurrency.min, max: config.concurrency.max },
      this.now(),
    );
    this.longPolls = new LongPollLimit(config.deviceLongPolls);
    this.#logger = options.logger;

    const registers = [options.registry];
    this.#throttled = new Counter({
      name: 'meshwork_throttled_requests_total',
      help: 'Requests refused by the throttle, by reason (429: per-client bounds and entry size; 503: concurrency and event-loop lag)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of throttleReasons) this.#throttled.labels(reason).inc(0);
    const concurrency = this.concurrency;
    new Gauge({
      name: 'meshwork_concurrency_limit',
      help: 'The adaptive concurrency limit of the process: requests admitted at once',
      registers,
      collect() {
        this.set(concurrency.limit);
      },
    });
    new Gauge({
      name: 'meshwork_concurrency_inflight',
      help: 'Requests holding a place under the adaptive concurrency limit',
      registers,
      collect() {
        this.set(concurrency.inflight);
      },
    });
    new Gauge({
      name: 'meshwork_throttle_event_loop_lag_seconds',
      help: 'Mean event-loop delay over the last half second, as the shedder saw it',
      registers,
      collect() {
        this.set(eventLoop.lagMs / 1000);
      },
    });
  }

  /** Starts the event-loop monitor and the summary of refusals. */
  start(): void {
    this.eventLoop.start();
    this.#summaryTimer ??= setInterval(() => this.summarise(), summaryIntervalMs);
    this.#summaryTimer.unref();
  }

  /** Stops the event-loop monitor and the summary. */
  stop(): void {
    this.eventLoop.stop();
    clearInterval(this.#summaryTimer);
    this.#summaryTimer = undefined;
    this.summarise();
  }

  /** Counts a refused request. */
  count(reason: ThrottleReason): void {
    this.#throttled.labels(reason).inc();
    this.#refusedSinceSummary[reason] = (this.#refusedSinceSummary[reason] ?? 0) + 1;
  }

  /** Logs the refusals since the last summary, if there were any. */
  summarise(): void {
    const refused = this.#refusedSinceSummary;
    if (Object.keys(refused).length === 0) return;
    this.#refusedSinceSummary = {};
    const noLoad = this.concurrency.noLoadRtt;
    this.#logger?.warn(
      {
        refused,
        concurrencyLimit: this.concurrency.limit,
        inflight: this.concurrency.inflight,
        noLoadLatencyMs: noLoad === undefined ? null : Math.round(noLoad * 100) / 100,
        eventLoopLagMs: Math.round(this.eventLoop.lagMs),
      },
      'Throttled requests',
    );
  }

  /**
   * Takes one of the device's long-poll places; call the returned function exactly when the
   * poll ends (answered, timed out or the client went away; calling it twice is harmless).
   * At the bound it throws a 429 `too_many_long_polls` ApiError with Retry-After.
   */
  acquireLongPoll(deviceId: string): () => void {
    const release = this.longPolls.tryAcquire(deviceId);
    if (release) return release;
    throw this.#tooManyLongPolls(deviceId);
  }

  /**
   * The same bound as a hook that releases by client id, for a long-poll module that
   * calls `acquire(clientId)` as a poll is admitted (it throws the 429) and
   * `release(clientId)` exactly once when that poll ends. Counts only, no closure per poll:
   * ten thousand idle polls must stay small.
   */
  readonly longPollAdmission = {
    acquire: (clientId: string): void => {
      if (!this.longPolls.take(clientId)) throw this.#tooManyLongPolls(clientId);
    },
    release: (clientId: string): void => {
      this.longPolls.give(clientId);
    },
  };

  #tooManyLongPolls(deviceId: string): ApiError {
    this.count('long_polls');
    return new ApiError(
      'too_many_long_polls',
      `device ${deviceId} already holds ${this.longPolls.perDevice} long polls, the most allowed; end one before opening another`,
      {
        details: { reason: 'long_polls', retryAfterSeconds: longPollRetryAfterSeconds },
        headers: { 'Retry-After': String(longPollRetryAfterSeconds) },
      },
    );
  }

  /** Refuses an entry larger than the configured maximum with 413 `entry_too_large`. */
  checkEntrySize(bytes: number): void {
    if (bytes <= this.config.maxEntryBytes) return;
    this.count('entry_size');
    throw new ApiError(
      'entry_too_large',
      `the entry is ${formatByteSize(bytes)}; an entry may be at most ${formatByteSize(this.config.maxEntryBytes)}`,
      {
        details: { reason: 'entry_size', size: bytes, maxEntryBytes: this.config.maxEntryBytes },
      },
    );
  }
}
