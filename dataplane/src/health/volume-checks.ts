// Checks of the data volumes, for /healthz/deep and for the periodic self-check that turns a
// volume fault into an exit. At most one check per volume runs at a time: callers that arrive
// while one runs wait for it, so the route cannot be used to pile up disk I/O.
import { setTimeout as delay } from 'node:timers/promises';
import { VolumeFaultError, type VolumeIdentity } from './volumes.ts';

/** What VolumeChecks needs of a volume (DataVolume has it; tests use controllable ones). */
export interface CheckableVolume {
  readonly path: string;
  readonly identity: VolumeIdentity;
  /** Resolves when the volume is sound; rejects (a VolumeFaultError) when it is not. */
  check(): Promise<void>;
}

/** The outcome of checking one volume. */
export interface VolumeCheckResult {
  volume: CheckableVolume;
  ok: boolean;
  ms: number;
  error?: string;
  /** Set when the volume cannot be trusted (a failed check, or I/O hung past the limit). */
  fault?: VolumeFaultError;
}

export interface VolumeCheckOptions {
  /** A check still running after this long means the volume's I/O hangs: a fault. */
  hangLimitMs: number;
}

/** Runs volume checks, one at a time per volume. */
export class VolumeChecks {
  readonly volumes: readonly CheckableVolume[];
  readonly #options: VolumeCheckOptions;
  readonly #running = new Map<CheckableVolume, { started: number; done: Promise<VolumeFaultError | undefined> }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(volumes: readonly CheckableVolume[], options: VolumeCheckOptions) {
    this.volumes = volumes;
    this.#options = options;
  }

  /** Checks every volume, waiting at most `waitMs` for each; a slower check is reported as failing. */
  async checkAll(waitMs: number): Promise<VolumeCheckResult[]> {
    return Promise.all(this.volumes.map((volume) => this.#check(volume, waitMs)));
  }

  /**
   * Checks every `intervalSeconds` and calls `onFault` with the first fault found (then stops
   * checking: the process is expected to exit).
   */
  startPeriodic(intervalSeconds: number, waitMs: number, onFault: (fault: VolumeFaultError) => void): void {
    if (intervalSeconds <= 0 || this.volumes.length === 0) return;
    const tick = async (): Promise<void> => {
      const fault = (await this.checkAll(waitMs)).find((r) => r.fault)?.fault;
      if (fault) {
        onFault(fault);
        return;
      }
      if (this.#timer !== undefined) this.#timer = setTimeout(() => void tick(), intervalSeconds * 1000).unref();
    };
    this.#timer = setTimeout(() => void tick(), intervalSeconds * 1000).unref();
  }

  /** Stops the periodic check. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #check(volume: CheckableVolume, waitMs: number): Promise<VolumeCheckResult> {
    let run = this.#running.get(volume);
    if (run === undefined) {
      const started = performance.now();
      const done = volume.check().then(
        () => undefined,
        (err: unknown) =>
          err instanceof VolumeFaultError ? err : new VolumeFaultError(volume.path, `check failed: ${String(err)}`, { cause: err }),
      );
      const entry = { started, done };
      run = entry;
      this.#running.set(volume, entry);
      void done.finally(() => {
        if (this.#running.get(volume) === entry) this.#running.delete(volume);
      });
    }
    const ac = new AbortController();
    const outcome = await Promise.race([
      run.done.then((fault) => ({ fault })),
      delay(waitMs, 'pending' as const, { signal: ac.signal }).catch(() => 'pending' as const),
    ]);
    ac.abort();
    const ms = Math.round((performance.now() - run.started) * 10) / 10;
    if (outcome === 'pending') {
      if (ms >= this.#options.hangLimitMs) {
        const fault = new VolumeFaultError(volume.path, `I/O has not completed for ${Math.round(ms / 1000)} s`);
        return { volume, ok: false, ms, error: fault.reason, fault };
      }
      return { volume, ok: false, ms, error: `no answer within ${waitMs} ms` };
    }
    if (outcome.fault) return { volume, ok: false, ms, error: outcome.fault.reason, fault: outcome.fault };
    return { volume, ok: true, ms };
  }
}
