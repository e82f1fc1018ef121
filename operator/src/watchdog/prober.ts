// The operator's own probe of each member's GET /healthz/deep: a hung process still looks
// Ready to Kubernetes until its probes notice, and some never do. At most one probe is in
// flight per member; each has a deadline; a member counts as failing after two failed probes
// in a row and as passing after one success. 404 means the image has no deep check.
import http from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import { deepHealthOk, healthPaths, type DeepHealthBody } from '@meshwork/contract';
import type { DeepCheck } from './ladder.ts';

/** Failed probes in a row before a member counts as failing (one lost packet is not a failure). */
export const probeFailureThreshold = 2;

interface ProbeRecord {
  uid: string;
  result: DeepCheck;
  failures: number;
  lastStarted: number;
  inFlight: boolean;
}

/** One probe target: a running member pod, its partition's key and probe settings. */
export interface ProbeTarget {
  pod: V1Pod;
  partitionKey: string;
  port: number;
  periodMs: number;
  timeoutMs: number;
}

/** Outcome of one HTTP probe. */
export type ProbeOutcome = 'ok' | 'failing' | 'unavailable';

/** Probes a member's deep health (GET http://ip:port/healthz/deep) once, within `timeoutMs`. */
export async function probeDeepHealth(ip: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: ip, port, path: healthPaths.deep, timeout: timeoutMs, agent: false, headers: { Accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (chunks.length < 16) chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode === 404) return resolve('unavailable');
          if (res.statusCode !== 200) return resolve('failing');
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<DeepHealthBody>;
            resolve(body.status === deepHealthOk ? 'ok' : 'failing');
          } catch {
            resolve('failing');
          }
        });
        res.on('error', () => resolve('failing'));
      },
    );
    req.on('timeout', () => req.destroy(new Error('deep health probe timed out')));
    req.on('error', () => resolve('failing'));
  });
}

export interface DeepProberOptions {
  /** The current probe targets (running member pods with an IP). */
  targets: () => ProbeTarget[];
  /** Called when a member's result changed, with its partition's key. */
  changed: (partitionKey: string) => void;
  /** How often the prober looks for due probes. */
  tickMs?: number;
  probe?: typeof probeDeepHealth;
  now?: () => number;
}

/** Probes members' deep health in the background while started. */
export class DeepProber {
  readonly #options: DeepProberOptions;
  readonly #records = new Map<string, ProbeRecord>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DeepProberOptions) {
    this.#options = options;
  }

  /** The latest result for a pod ('unknown' before its first probe or after it changed). */
  result(pod: V1Pod): DeepCheck {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const record = this.#records.get(key);
    return record && record.uid === pod.metadata?.uid ? record.result : 'unknown';
  }

  /** Starts probing. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#options.tickMs ?? 1000);
    this.#timer.unref();
  }

  /** Stops probing; probes in flight finish on their own deadline. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Starts the probes that are due (exposed for tests). */
  tick(): void {
    const now = (this.#options.now ?? Date.now)();
    const seen = new Set<string>();
    for (const target of this.#options.targets()) {
      const { pod } = target;
      const ip = pod.status?.podIP;
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const uid = pod.metadata?.uid ?? '';
      seen.add(key);
      let record = this.#records.get(key);
      if (!record || record.uid !== uid) {
        record = { uid, result: 'unknown', failures: 0, lastStarted: 0, inFlight: false };
        this.#records.set(key, record);
      }
      if (!ip || record.inFlight || now - record.lastStarted < target.periodMs) continue;
      record.inFlight = true;
      record.lastStarted = now;
      const current = record;
      void (this.#options.probe ?? probeDeepHealth)(ip, target.port, target.timeoutMs).then((outcome) => {
        current.inFlight = false;
        if (this.#records.get(key) !== current) return;
        const before = current.result;
        if (outcome === 'failing') {
          current.failures++;
          if (current.failures >= probeFailureThreshold) current.result = 'failing';
        } else {
          current.failures = 0;
          current.result = outcome;
        }
        if (current.result !== before) this.#options.changed(target.partitionKey);
      });
    }
    for (const key of this.#records.keys()) if (!seen.has(key)) this.#records.delete(key);
  }
}
