// How long a downloading agent waits for a direct connection to a peer's endpoint (ADR 65). A
// peer behind a NAT announces addresses of its own network (a private or documentation range);
// from elsewhere such an address is not reachable, and a connection to it is not refused but
// dropped, so the attempt costs its whole timeout before the relay is tried. Such an endpoint on
// a network this device has no interface on gets a short attempt, and an endpoint that did not
// answer in time is not tried again for a minute. Pure: interfaces and the time are arguments.
import { BlockList, isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';

/** The connect timeout of an endpoint this device can expect to reach (public, or on one of its own networks). */
export const directConnectTimeoutMs = 2000;

/** The connect timeout of an endpoint in a non-public range this device has no interface on (a routed private network still answers within it). */
export const offNetworkConnectTimeoutMs = 250;

/** How long an endpoint that did not answer a connection attempt in time is skipped. */
export const failedEndpointSkipMs = 60_000;

/** Address ranges that are not routed on the internet: a peer's address in one is reachable only from its own (or a routed private) network. */
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ['10.0.0.0', 8], // RFC 1918
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598)
  ['169.254.0.0', 16], // link-local
  ['192.0.2.0', 24], // documentation (RFC 5737)
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
] as const)
  nonPublic.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['2001:db8::', 32], // documentation
] as const)
  nonPublic.addSubnet(net, prefix, 'ipv6');

/** The host of an `https://host:port` endpoint, without IPv6 brackets; undefined when it does not parse. */
function hostOf(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/**
 * Whether an endpoint's address is in a non-public range on none of this device's networks
 * (`interfaces` as `os.networkInterfaces()` lists them). A host name is never off-network: only
 * a resolver knows where it points.
 */
export function isOffNetwork(endpoint: string, interfaces: readonly NetworkInterfaceInfo[]): boolean {
  const host = hostOf(endpoint);
  if (host === undefined) return false;
  const family = isIP(host);
  if (family === 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (!nonPublic.check(host, type)) return false;
  return !interfaces.some((i) => {
    if (i.cidr === null || (i.family === 'IPv4') !== (family === 4)) return false;
    const [net, bits] = i.cidr.split('/');
    const own = new BlockList();
    own.addSubnet(net!, Number(bits), type);
    return own.check(host, type);
  });
}

/** The connect timeout of one endpoint: short for an off-network one, `fallbackMs` otherwise. */
export function connectTimeoutFor(
  endpoint: string,
  interfaces: readonly NetworkInterfaceInfo[],
  fallbackMs = directConnectTimeoutMs,
): number {
  return isOffNetwork(endpoint, interfaces) ? Math.min(fallbackMs, offNetworkConnectTimeoutMs) : fallbackMs;
}

/** Endpoints whose direct connection timed out recently, skipped until `failedEndpointSkipMs` has passed. */
export class FailedEndpoints {
  readonly #until = new Map<string, number>();
  readonly #skipMs: number;

  constructor(skipMs = failedEndpointSkipMs) {
    this.#skipMs = skipMs;
  }

  static #key(deviceId: string, endpoint: string): string {
    return `${deviceId} ${endpoint}`;
  }

  /** Failures remembered (expired ones included until they are dropped). */
  get size(): number {
    return this.#until.size;
  }

  /** Records a connection to a device's endpoint that timed out at `now`. */
  failed(deviceId: string, endpoint: string, now: number): void {
    // Peers come and go: past failures are dropped before the map grows large.
    if (this.#until.size >= 1024) for (const [key, until] of this.#until) if (until <= now) this.#until.delete(key);
    this.#until.set(FailedEndpoints.#key(deviceId, endpoint), now + this.#skipMs);
  }

  /** Forgets a failure (the endpoint connected). */
  connected(deviceId: string, endpoint: string): void {
    this.#until.delete(FailedEndpoints.#key(deviceId, endpoint));
  }

  /** Whether to skip the endpoint at `now`. */
  skip(deviceId: string, endpoint: string, now: number): boolean {
    const key = FailedEndpoints.#key(deviceId, endpoint);
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(key);
    return false;
  }
}
