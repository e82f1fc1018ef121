// Kubelet-like probing and restart backoff, kept free of pod bookkeeping so they test alone.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { V1Probe } from '@kubernetes/client-node';

/** Resolves a probe's port (a number or the name of a container port). */
export function probePort(port: number | string | undefined, namedPorts: Record<string, number>): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return namedPorts[port];
}

/** Runs one probe attempt against `host`; true when it succeeded. */
export async function probeOnce(probe: V1Probe, host: string, namedPorts: Record<string, number>): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const port = probePort(probe.httpGet.port, namedPorts);
    if (port === undefined) return false;
    const headers = Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return new Promise((resolve) => {
      const req = request(
        { host: probe.httpGet?.host ?? host, port, path: probe.httpGet?.path ?? '/', method: 'GET', headers, timeout: timeoutMs },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }
  if (probe.tcpSocket) {
    const port = probePort(probe.tcpSocket.port, namedPorts);
    if (port === undefined) return false;
    return new Promise((resolve) => {
      const socket = connect({ host: probe.tcpSocket?.host ?? host, port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(false));
    });
  }
  // exec and gRPC probes are not supported by the local node agent: they fail, visibly.
  return false;
}

/** Consecutive-result bookkeeping of one probe, as the kubelet's prober keeps it. */
export class ProbeTracker {
  readonly #success: number;
  readonly #failure: number;
  #successes = 0;
  #failures = 0;
  #result: boolean;

  constructor(probe: V1Probe, initial: boolean) {
    this.#success = probe.successThreshold ?? 1;
    this.#failure = probe.failureThreshold ?? 3;
    this.#result = initial;
  }

  /** Records an attempt and returns the probe's current result. */
  record(ok: boolean): boolean {
    if (ok) {
      this.#successes++;
      this.#failures = 0;
      if (this.#successes >= this.#success) this.#result = true;
    } else {
      this.#failures++;
      this.#successes = 0;
      if (this.#failures >= this.#failure) this.#result = false;
    }
    return this.#result;
  }

  get result(): boolean {
    return this.#result;
  }
}

/** Restart delay after the n-th consecutive crash: base doubling up to max (kubelet: 10 s to 300 s). */
export function restartDelayMs(consecutiveCrashes: number, baseMs: number, maxMs: number): number {
  if (consecutiveCrashes <= 0) return 0;
  return Math.min(maxMs, baseMs * 2 ** Math.min(consecutiveCrashes - 1, 30));
}
