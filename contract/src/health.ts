// The operations paths every Meshwork process answers, and the shape of the deep health answer
// the operator's watchdog reads. Kubernetes probes, the watchdog, Prometheus and the throttle's
// exemptions all name these paths; they are written once, here.

/** The operations paths: liveness, readiness, deep health and metrics. */
export const healthPaths = {
  /** Liveness: the event loop is responsive (no I/O); the startup and liveness probes. */
  live: '/livez',
  /** Readiness: stores reachable, slots owned, not draining; the readiness probe. */
  ready: '/readyz',
  /** Deep health: a real write/fsync/read per volume and a store round trip; the watchdog's probe. */
  deep: '/healthz/deep',
  /** Prometheus metrics. */
  metrics: '/metrics',
} as const;

/** One of the operations paths. */
export type HealthPath = (typeof healthPaths)[keyof typeof healthPaths];

/** The `status` of a passing deep health answer; anything else, or a status other than 200, is failing. */
export const deepHealthOk = 'ok';

/** The deep health answer's JSON body; the watchdog reads `status`, a person the checks. */
export interface DeepHealthBody {
  status: typeof deepHealthOk | 'failing';
  /** When the checks ran (RFC 3339); a cached answer is at most a second old. */
  checkedAt: string;
  /** One entry per volume and per store. */
  checks: readonly { name: string; ok: boolean; error?: string }[];
}

/**
 * The `route` label values of requests that wait by design (long polls): latency panels, the
 * latency alert and a rollout's latency analysis leave them out.
 */
export const longPollRouteLabels = ['/v1/notifications', '/v1/objects/:id/changes'] as const;

/**
 * The `route` label of every WebDAV request on the gateway, whatever its path (which names a
 * file). A WebDAV client moves a whole file in one request, so its time is the file's size over
 * the link, not a latency.
 */
export const davRouteLabel = '/dav';

/**
 * The `route` labels that latency panels, the latency alert and a rollout's latency analysis
 * leave out: long polls, which wait by design, and WebDAV, whose requests are transfers. Their
 * requests and errors still count.
 */
export const latencyExcludedRouteLabels: readonly string[] = [...longPollRouteLabels, davRouteLabel];
