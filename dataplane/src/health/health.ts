// The health of a data-plane process, as three questions with different costs:
// liveness (is the event loop responsive; no I/O), readiness (are the stores reachable, are the
// slots owned, is it draining; answered from state kept current in the background), and deep
// health (a real write/fsync/read on each volume and a round trip to each store; one at a
// time, shared by concurrent callers and cached for a second).
import type { EventLoopMonitor, EventLoopStatus } from './event-loop.ts';
import type { StoreReachability } from './store-reachability.ts';
import type { VolumeChecks } from './volume-checks.ts';
import type { VolumeFaultError } from './volumes.ts';

/** One named check and its outcome. */
export interface CheckResult {
  name: string;
  ok: boolean;
  error?: string;
}

/** A deep check's outcome, with its duration and, for a volume, the volume's identity. */
export interface DeepCheckResult extends CheckResult {
  ms: number;
  volumeId?: string;
  volumeCreatedAt?: string;
}

export interface ReadinessReport {
  ok: boolean;
  checks: CheckResult[];
}

export interface DeepHealthReport {
  ok: boolean;
  checkedAt: string;
  checks: DeepCheckResult[];
  /** Volume faults found by this check; the process must exit for each (after answering). */
  faults: VolumeFaultError[];
}

export interface ProcessHealthParts {
  eventLoop: EventLoopMonitor;
  stores: StoreReachability;
  volumes: VolumeChecks;
  /** Readiness checks of the role (the partition's slot lease). */
  roleReadiness: () => CheckResult[];
}

// Callers within this long after a deep check get its result instead of a new check.
const deepCacheMs = 1000;
// How long a deep check waits for a volume before reporting it as failing (not as faulty).
const deepVolumeWaitMs = 5000;

/** Liveness, readiness and deep health of one process. */
export class ProcessHealth {
  readonly #parts: ProcessHealthParts;
  #draining = false;
  #deepRunning: Promise<DeepHealthReport> | undefined;
  #deepLast: { at: number; report: DeepHealthReport } | undefined;

  constructor(parts: ProcessHealthParts) {
    this.#parts = parts;
  }

  /** Whether SIGTERM started the drain. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Marks the process as draining: readiness fails from now on. */
  startDraining(): void {
    this.#draining = true;
  }

  liveness(): EventLoopStatus {
    return this.#parts.eventLoop.status();
  }

  readiness(): ReadinessReport {
    const checks: CheckResult[] = [
      ...this.#parts.stores.readiness(),
      ...this.#parts.roleReadiness(),
      this.#draining ? { name: 'draining', ok: false, error: 'the process is shutting down' } : { name: 'draining', ok: true },
    ];
    return { ok: checks.every((c) => c.ok), checks };
  }

  /** A deep check: the one running, a result younger than a second, or a new one. */
  async deep(): Promise<DeepHealthReport> {
    if (this.#deepLast && performance.now() - this.#deepLast.at < deepCacheMs) return this.#deepLast.report;
    this.#deepRunning ??= this.#runDeep().finally(() => {
      this.#deepRunning = undefined;
    });
    return this.#deepRunning;
  }

  async #runDeep(): Promise<DeepHealthReport> {
    const [volumes, stores] = await Promise.all([this.#parts.volumes.checkAll(deepVolumeWaitMs), this.#parts.stores.roundTrips()]);
    const checks: DeepCheckResult[] = [
      ...volumes.map((v) => ({
        name: `volume:${v.volume.path}`,
        ok: v.ok,
        ms: v.ms,
        volumeId: v.volume.identity.id,
        volumeCreatedAt: v.volume.identity.createdAt,
        ...(v.error === undefined ? {} : { error: v.error }),
      })),
      ...stores,
    ];
    const report: DeepHealthReport = {
      ok: checks.every((c) => c.ok),
      checkedAt: new Date().toISOString(),
      checks,
      faults: volumes.flatMap((v) => (v.fault ? [v.fault] : [])),
    };
    this.#deepLast = { at: performance.now(), report };
    return report;
  }
}
