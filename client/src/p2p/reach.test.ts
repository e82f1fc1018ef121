// How long a direct attempt to a peer's endpoint may take (ADR 65): off-network addresses get a
// short attempt, and an endpoint that failed recently is skipped for a while.
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { connectTimeoutFor, directConnectTimeoutMs, FailedEndpoints, isOffNetwork, offNetworkConnectTimeoutMs } from './reach.ts';

function iface(cidr: string): NetworkInterfaceInfo {
  const [address, bits] = cidr.split('/') as [string, string];
  const v6 = address.includes(':');
  return v6
    ? { address, netmask: '', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr, scopeid: 0 }
    : { address, netmask: '', family: 'IPv4', mac: '00:00:00:00:00:00', internal: bits === '8' && address.startsWith('127.'), cidr };
}

/** A device on the wide-area side of the NAT testbed, and one on its LAN. */
const outside = [iface('127.0.0.1/8'), iface('203.0.113.3/28')];
const onLan = [iface('127.0.0.1/8'), iface('198.51.100.11/24'), iface('fd12:3456::11/64')];

describe('isOffNetwork', () => {
  it.each<[string, readonly NetworkInterfaceInfo[], boolean]>([
    ['https://198.51.100.12:4433', outside, true], // a LAN peer seen from outside its NAT
    ['https://198.51.100.12:4433', onLan, false], // the same peer from its LAN
    ['https://203.0.113.7:4433', outside, false], // on the fetcher's own segment
    ['https://203.0.113.40:4433', outside, true], // the same range, another subnet
    ['https://192.168.1.20:4433', onLan, true],
    ['https://10.1.2.3:4433', outside, true],
    ['https://172.20.0.5:4433', outside, true],
    ['https://100.64.3.4:4433', outside, true],
    ['https://169.254.10.1:4433', outside, true],
    ['https://198.18.0.9:4433', outside, true],
    ['https://8.8.8.8:4433', outside, false], // public: may be reachable, the full attempt
    ['https://127.0.0.1:4433', outside, false], // loopback is not a private range
    ['https://[fd12:3456::12]:4433', onLan, false],
    ['https://[fd99::12]:4433', onLan, true],
    ['https://[fe80::1]:4433', outside, true],
    ['https://[2001:db8::5]:4433', outside, true],
    ['https://[2a00:1450::1]:4433', outside, false],
    ['https://laptop.example:4433', outside, false], // a name: only a resolver knows
    ['not a url', outside, false],
  ])('%s from %j: %s', (endpoint, interfaces, expected) => {
    expect(isOffNetwork(endpoint, interfaces)).toBe(expected);
  });
});

describe('connectTimeoutFor', () => {
  it.each([
    ['https://198.51.100.12:4433', outside, 2000, offNetworkConnectTimeoutMs],
    ['https://198.51.100.12:4433', onLan, 2000, 2000],
    ['https://198.51.100.12:4433', outside, 100, 100], // never longer than asked
    ['https://8.8.8.8:4433', outside, directConnectTimeoutMs, directConnectTimeoutMs],
  ])('%s → %d ms', (endpoint, interfaces, fallback, expected) => {
    expect(connectTimeoutFor(endpoint, interfaces, fallback)).toBe(expected);
  });
});

describe('FailedEndpoints', () => {
  it('skips an endpoint that failed until the skip has passed, per device and endpoint', () => {
    const failed = new FailedEndpoints(60_000);
    expect(failed.skip('d1', 'https://198.51.100.12:4433', 0)).toBe(false);
    failed.failed('d1', 'https://198.51.100.12:4433', 1000);
    expect(failed.skip('d1', 'https://198.51.100.12:4433', 1000)).toBe(true);
    expect(failed.skip('d1', 'https://198.51.100.12:4433', 60_999)).toBe(true);
    expect(failed.skip('d2', 'https://198.51.100.12:4433', 2000)).toBe(false);
    expect(failed.skip('d1', 'https://198.51.100.12:5000', 2000)).toBe(false);
    expect(failed.skip('d1', 'https://198.51.100.12:4433', 61_000)).toBe(false);
  });

  it('forgets a failure once the endpoint connects', () => {
    const failed = new FailedEndpoints(60_000);
    failed.failed('d1', 'https://203.0.113.7:4433', 0);
    failed.connected('d1', 'https://203.0.113.7:4433');
    expect(failed.skip('d1', 'https://203.0.113.7:4433', 1)).toBe(false);
  });

  it('drops expired failures when many have gathered', () => {
    const failed = new FailedEndpoints(10);
    for (let i = 0; i < 1024; i++) failed.failed(`d${i}`, 'https://198.51.100.12:4433', 0);
    failed.failed('late', 'https://198.51.100.12:4433', 100);
    // The 1,024 expired ones were dropped; the late one is still skipped.
    expect(failed.size).toBe(1);
    expect(failed.skip('late', 'https://198.51.100.12:4433', 105)).toBe(true);
  });
});
