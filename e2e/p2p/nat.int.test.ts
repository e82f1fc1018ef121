// The NAT testbed behaves like a home network on the internet: devices on the LAN reach each
// other directly and the service through the router, which rewrites their source address; an
// outside device reaches the service but cannot open a connection to a LAN device.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNat, execIn, inNetns, natSupport, type NatTestbed } from './nat.ts';

/** A node one-liner run inside a namespace: connects to host:port, prints what it reads, or the error code. */
const connectScript = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const socket = net.connect({ host, port: Number(port), timeout: Number(ms) });
let text = '';
socket.on('data', (d) => (text += d));
socket.on('end', () => { console.log('ok ' + text); process.exit(0); });
socket.on('timeout', () => { console.log('timeout'); process.exit(0); });
socket.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
`;

/** A node one-liner run inside a namespace: listens on host:port and answers each connection with its remote address. */
const listenScript = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
net.createServer((s) => s.end(s.remoteAddress)).listen(Number(port), host, () => console.log('listening'));
`;

async function connectFrom(netns: string, host: string, port: number, timeoutMs: number): Promise<string> {
  return (await execIn(netns, process.execPath, ['-e', connectScript, host, String(port), String(timeoutMs)])).trim();
}

describe.runIf(natSupport().ok)('the NAT testbed', () => {
  let nat: NatTestbed;
  let service: Server;
  const port = 18_080;

  beforeAll(async () => {
    nat = await createNat(['a', 'b'], ['c']);
    // The service: a server in the root namespace on the wide-area address, answering with the peer's address.
    service = createServer((s) => s.end(s.remoteAddress ?? ''));
    service.listen(port, nat.serviceIP);
    await once(service, 'listening');
  });

  afterAll(async () => {
    service?.close();
    await nat?.remove();
  });

  it('lets LAN devices reach the service, which sees the router’s address', async () => {
    const [a, b] = nat.lan;
    expect(await connectFrom(a!.netns, nat.serviceIP, port, 5000)).toBe(`ok ${nat.router.wanIP}`);
    expect(await connectFrom(b!.netns, nat.serviceIP, port, 5000)).toBe(`ok ${nat.router.wanIP}`);
  });

  it('lets an outside device reach the service from its own address', async () => {
    const [c] = nat.outside;
    expect(await connectFrom(c!.netns, nat.serviceIP, port, 5000)).toBe(`ok ${c!.ip}`);
  });

  it('connects LAN devices directly, and not an outside device to a LAN device', async () => {
    const [a, b] = nat.lan;
    const [c] = nat.outside;
    const cmd = inNetns(b!.netns, process.execPath, ['-e', listenScript, b!.ip, String(port)]);
    const server = spawn(cmd.binary, cmd.args, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`listener exited with ${code}`)));
      });
      expect(await connectFrom(a!.netns, b!.ip, port, 5000)).toBe(`ok ${a!.ip}`);
      // The router drops a new connection from the wide area into the LAN: the attempt times out.
      expect(await connectFrom(c!.netns, b!.ip, port, 1500)).toBe('timeout');
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('leaves nothing behind when removed', async () => {
    const other = await createNat(['x'], []);
    expect(other.block).not.toBe(nat.block);
    await other.remove();
    for (const netns of [other.router.netns, other.lan[0]!.netns]) expect(existsSync(`/run/netns/${netns}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${other.bridge}`)).toBe(false);
  });
});
