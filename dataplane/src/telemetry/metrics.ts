// The data plane's Prometheus metrics, in a private registry per process: RED histograms per
// route, requests in flight, bytes in and out, store latency, open long polls, and the Node.js
// process metrics, and the collections the byte pacer asked for. Other modules (throttling) register their own metrics on `registry`.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { gcPaceBytes, processGcPacer } from '@meshwork/contract';

/** Which store a timed operation went to. */
export type StoreName = 'etcd' | 's3';

/** Whether a store operation answered (whatever its answer) or failed. */
export type StoreOutcome = 'ok' | 'error';

/** Every metric a data-plane process exports, registered in `registry`. */
export class DataplaneMetrics {
  readonly registry = new Registry();
  readonly httpRequestDuration = new Histogram({
    name: 'meshwork_http_request_duration_seconds',
    help: "Time from a request's arrival to the end of its response, by method, route pattern and status (499: the client went away first).",
    labelNames: ['method', 'route', 'status'] as const,
    // Long polls and large transfers take tens of seconds; API calls take milliseconds.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly httpRequestsInFlight = new Gauge({
    name: 'meshwork_http_requests_in_flight',
    help: 'Requests being served now.',
    registers: [this.registry],
  });
  /** Blocks read from the store for a download, by how their bytes were checked (ADR 77). */
  readonly blockReads = new Counter({
    name: 'meshwork_block_reads_total',
    help: 'Blocks read from the store for a download: check="store" when the sha256 checksum the store kept since the write names the block (not hashed again), "hash" when the bytes were hashed (ADR 77).',
    labelNames: ['check'] as const,
    registers: [this.registry],
  });
  readonly httpRequestBytes = new Counter({
    name: 'meshwork_http_request_bytes_total',
    help: 'Bytes received in requests (headers and bodies, streamed uploads included), by route pattern.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly httpResponseBytes = new Counter({
    name: 'meshwork_http_response_bytes_total',
    help: 'Bytes sent in responses (headers and bodies, streamed downloads included), by route pattern.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly storeOperationDuration = new Histogram({
    name: 'meshwork_store_operation_duration_seconds',
    help: 'Latency of etcd and S3 operations (S3 reads until the response headers), by store, operation and outcome.',
    labelNames: ['store', 'operation', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #longPollsOpen: () => number;

  /** `longPollsOpen` is read at each scrape; `role` prefixes the process metrics. */
  constructor(role: string, longPollsOpen: () => number = () => 0) {
    this.#longPollsOpen = longPollsOpen;
    const read = (): number => this.#longPollsOpen();
    new Gauge({
      name: 'meshwork_long_polls_open',
      help: 'Long polls (changes and notifications) waiting for a change now.',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
    let pacedReported = 0;
    new Counter({
      name: 'meshwork_gc_paced_collections_total',
      help: `Young-generation collections asked for after every ${gcPaceBytes / 1024 / 1024} MiB of block bytes streamed (ADR 75); 0 when Node runs without --expose-gc.`,
      registers: [this.registry],
      collect() {
        const now = processGcPacer.collections;
        this.inc(now - pacedReported);
        pacedReported = now;
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: `meshwork_${role}_` });
  }

  /** Records one finished store operation. */
  observeStoreOperation(store: StoreName, operation: string, outcome: StoreOutcome, seconds: number): void {
    this.storeOperationDuration.observe({ store, operation, outcome }, seconds);
  }
}
