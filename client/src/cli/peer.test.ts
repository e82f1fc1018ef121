// `meshwork sync`'s peer flags: what --peer-listen and --announce accept, and the endpoints announced by default.
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultEndpoints, parseAnnounce, parsePeerListen, relayUrl } from './peer.ts';

describe('--peer-listen', () => {
  it.each([
    ['off', 'off'],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:7443', { host: '0.0.0.0', port: 7443 }],
    ['[::1]:7443', { host: '::1', port: 7443 }],
  ])('accepts %s', (value, expected) => {
    expect(parsePeerListen(value)).toEqual(expected);
  });

  it.each(['', 'on', '127.0.0.1', 'example.com:7443', '127.0.0.1:70000', '::1:7443', '127.0.0.1:-1'])(
    'refuses %j as a usage error',
    (value) => {
      expect(() => parsePeerListen(value)).toThrow(expect.objectContaining({ name: 'UsageError' }) as Error);
    },
  );
});

describe('--announce', () => {
  it('takes comma-separated https://host:port URLs', () => {
    expect(parseAnnounce('https://203.0.113.9:7443, https://[2001:db8::1]:7443')).toEqual([
      'https://203.0.113.9:7443',
      'https://[2001:db8::1]:7443',
    ]);
  });

  it.each([
    '',
    'http://203.0.113.9:7443',
    'https://203.0.113.9',
    'https://203.0.113.9:7443/p2p',
    'nonsense',
    Array(9).fill('https://h:1').join(','),
  ])('refuses %j', (value) => {
    expect(() => parseAnnounce(value)).toThrow(expect.objectContaining({ name: 'UsageError' }) as Error);
  });
});

describe('the endpoints announced by default', () => {
  const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo =>
    family === 'IPv4'
      ? { address, family, internal, netmask: '', mac: '', cidr: null }
      : { address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 };
  const interfaces = {
    lo: [nic('127.0.0.1', 'IPv4', true)],
    eth0: [nic('198.51.100.7', 'IPv4'), nic('2001:db8::7', 'IPv6'), nic('fe80::1', 'IPv6')],
  };

  it.each([
    ['127.0.0.1', ['https://127.0.0.1:7443']],
    ['0.0.0.0', ['https://198.51.100.7:7443']],
    ['::', ['https://198.51.100.7:7443', 'https://[2001:db8::7]:7443']],
  ])('for a listener on %s', (host, expected) => {
    expect(defaultEndpoints(host, 7443, interfaces)).toEqual(expected);
  });
});

describe('the relay URL', () => {
  it.each([
    ['https://mesh.example.com', 'wss://mesh.example.com/v1/devices/d1/relay'],
    ['http://127.0.0.1:8080/', 'ws://127.0.0.1:8080/v1/devices/d1/relay'],
    ['https://example.com/mesh', 'wss://example.com/mesh/v1/devices/d1/relay'],
  ])('of a device on %s', (server, url) => {
    expect(relayUrl(server, 'd1')).toBe(url);
  });
});
