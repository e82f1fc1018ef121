// The deep-health probe against real HTTP servers on loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { probeDeepHealth } from './prober.ts';

const servers: http.Server[] = [];
const hung: http.ServerResponse[] = [];

/** A server answering every request with `status` and `body`, or never when `hang`. */
async function answering(status: number, body: string, hang = false): Promise<number> {
  const server = http.createServer((_req, res) => {
    if (hang) {
      hung.push(res);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('probeDeepHealth', () => {
  afterAll(async () => {
    for (const res of hung) res.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it.each([
    ['200 with status ok', 200, '{"status":"ok","checks":[]}', 'ok'],
    ['200 with another status', 200, '{"status":"failing"}', 'failing'],
    ['200 that is not JSON', 200, 'fine', 'failing'],
    ['503 failing', 503, '{"status":"failing","checks":[{"name":"volume:/d0","ok":false}]}', 'failing'],
    ['404: no deep check in this image', 404, 'not found', 'unavailable'],
  ])('reads %s', async (_name, status, body, expected) => {
    expect(await probeDeepHealth('127.0.0.1', await answering(status, body), 1000)).toBe(expected);
  });

  it('fails a server that accepts the connection and never answers, at the deadline', async () => {
    const port = await answering(200, '', true);
    const started = performance.now();
    expect(await probeDeepHealth('127.0.0.1', port, 300)).toBe('failing');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('fails when nothing listens', async () => {
    expect(await probeDeepHealth('127.0.0.1', await closedPort(), 500)).toBe('failing');
  });
});
