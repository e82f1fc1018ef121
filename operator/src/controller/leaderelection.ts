// Leader election on a coordination.k8s.io Lease, with client-go's rules: a candidate
// takes the Lease only when it has seen the record unchanged for a whole lease duration
// (its own clock, never the holder's), the leader renews every retry period, and a leader
// that has not renewed within the renew deadline must stop at once: another may take over.
import type { Logger } from 'pino';
import { KubeApiError, type KubeClient, type ResourceRef } from '../kube/client.ts';

export interface LeaseTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Lease 15 s, renew deadline 10 s, retry 2 s: the Kubernetes controllers' defaults. */
export const defaultLeaseTimings: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  timings?: LeaseTimings;
  /** Called once when this process becomes leader. */
  onStartedLeading: () => void;
  /** Called once if leadership is lost; the process must stop reconciling immediately. */
  onStoppedLeading: (reason: string) => void;
}

/** MicroTime as the API server expects it: RFC 3339 with microseconds. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Whether a candidate that last saw the record change at `observedAtMs` may take the lease at `nowMs`. */
export function leaseExpired(observedAtMs: number, leaseDurationMs: number, nowMs: number): boolean {
  return nowMs >= observedAtMs + leaseDurationMs;
}

/** Campaigns for a Lease and keeps it renewed while leading. */
export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  readonly #timings: LeaseTimings;
  readonly #ref: ResourceRef;
  #observedRecord = '';
  #observedAtMs = 0;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastRenewMs = 0;

  constructor(options: LeaderElectorOptions) {
    this.#options = options;
    this.#timings = options.timings ?? defaultLeaseTimings;
    this.#ref = { apiVersion: 'coordination.k8s.io/v1', resource: 'leases', namespace: options.namespace, name: options.name };
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Starts campaigning; returns at once. */
  start(): void {
    this.#stopped = false;
    void this.#tick();
  }

  /** Stops campaigning and, if leading, gives the lease up so a successor need not wait for it to expire. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#options.client.get<Lease>(this.#ref);
      if (lease?.spec?.holderIdentity !== this.#options.identity) return;
      await this.#options.client.replace(this.#ref, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
      });
      this.#options.log.info({ lease: `${this.#options.namespace}/${this.#options.name}` }, 'Released the leader lease');
    } catch (err) {
      this.#options.log.warn({ err }, 'Could not release the leader lease; it will expire');
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    let ok = false;
    try {
      ok = await this.#tryAcquireOrRenew();
    } catch (err) {
      this.#options.log.warn({ err, lease: this.#options.name }, 'Leader lease request failed');
    }
    if (this.#stopped) return;
    const now = Date.now();
    if (ok) {
      this.#lastRenewMs = now;
      if (!this.#leading) {
        this.#leading = true;
        this.#options.log.info(
          { identity: this.#options.identity, lease: `${this.#options.namespace}/${this.#options.name}` },
          'Acquired the leader lease',
        );
        this.#options.onStartedLeading();
      }
    } else if (this.#leading && now - this.#lastRenewMs >= this.#timings.renewDeadlineMs) {
      this.#leading = false;
      this.#stopped = true;
      this.#options.onStoppedLeading(`the lease was not renewed within ${this.#timings.renewDeadlineMs} ms`);
      return;
    }
    this.#timer = setTimeout(() => void this.#tick(), this.#timings.retryPeriodMs);
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, identity } = this.#options;
    const now = new Date();
    const durationSeconds = Math.round(this.#timings.leaseDurationMs / 1000);
    const lease = await client.get<Lease>(this.#ref);
    if (!lease) {
      try {
        await client.create(this.#ref, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.#options.name, namespace: this.#options.namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (record !== this.#observedRecord) {
      this.#observedRecord = record;
      this.#observedAtMs = now.getTime();
    }
    const holder = spec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const observedDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && !leaseExpired(this.#observedAtMs, observedDurationMs, now.getTime())) return false;
    const renewing = holder === identity;
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewing && spec.acquireTime ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: renewing ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    try {
      await client.replace(this.#ref, { ...lease, spec: next });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
    return true;
  }
}
