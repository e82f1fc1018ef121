// The gateway's request path in process, against stub partitions on loopback whose answers the
// test chooses: a 421 is absorbed by listing the map again and repeating the request (a small
// body sent again byte for byte), a streamed body that already left is answered 503 instead,
// and a member that says it is draining is set aside for another member of its partition.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { Agent } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlotMapRecord } from '@meshwork/contract';
import { mintIdInSlot } from '../slots.ts';
import { DataplaneMetrics } from '../telemetry/metrics.ts';
import { noTracing } from '../telemetry/tracing.ts';
import { AdaptiveLimit } from './admission.ts';
import { GatewayRouter, type GatewayMetrics } from './gateway.ts';
import { MemberStates } from './members.ts';
import { buildSlotTable, type SlotTable } from './slot-table.ts';

interface Seen {
  method: string;
  url: string;
  body: Buffer;
}

/** A stub partition answering each request with `answer`; it records what it received. */
async function stub(answer: (seen: Seen) => { status: number; body: unknown }): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks) };
      seen.push(s);
      const { status, body } = answer(s);
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, seen, server };
}

const record = (partition: string, replica: string, slots: string, url: string): SlotMapRecord => ({
  partition,
  replica,
  slots,
  url,
  instance: replica,
  registeredAt: '2026-01-01T00:00:00Z',
});

let wrong: Awaited<ReturnType<typeof stub>>;
let right: Awaited<ReturnType<typeof stub>>;
let draining: Awaited<ReturnType<typeof stub>>;
let gateway: Server;
let gatewayUrl: string;
const slots: { table: SlotTable; next: SlotTable | undefined; refreshes: number; refresh(): Promise<void> } = {
  table: buildSlotTable([]),
  next: undefined,
  refreshes: 0,
  refresh() {
    this.refreshes++;
    if (this.next) this.table = this.next;
    return Promise.resolve();
  },
};
const agents = { regular: new Agent({ keepAlive: true }), longPoll: new Agent({ keepAlive: true }) };

beforeAll(async () => {
  wrong = await stub(() => ({ status: 421, body: { error: { code: 'misdirected', message: 'not mine' } } }));
  right = await stub((s) => ({ status: 200, body: { echoed: s.body.length } }));
  draining = await stub(() => ({ status: 503, body: { error: { code: 'draining', message: 'bye' } } }));
  const http = new DataplaneMetrics('gateway_test');
  const metrics: GatewayMetrics = { http, upstream: () => undefined, shed: () => undefined, retried: () => undefined };
  const members = new MemberStates();
  const router = new GatewayRouter({
    slots,
    members,
    limitOf: () => new AdaptiveLimit({ min: 1, max: 100 }),
    loopLagMs: () => 0,
    agents,
    upstreamTimeoutMs: 5000,
    proto: 'http',
    logger: pino({ level: 'silent' }),
    metrics,
    tracing: noTracing,
  });
  gateway = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    void router.serve(req, res, q === -1 ? url : url.slice(0, q), q === -1 ? '' : url.slice(q + 1));
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as { port: number }).port}`;
});

afterAll(() => {
  for (const s of [wrong, right, draining]) s?.server.close();
  gateway?.close();
  agents.regular.destroy();
  agents.longPoll.destroy();
});

function send(method: string, path: string, body?: Buffer, chunked = false): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (body !== undefined && !chunked) headers['content-length'] = String(body.length);
    const req = request(`${gatewayUrl}${path}`, { method, headers }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The map says `wrong` owns slot 7; a listing says `right` does. */
function staleMap(): void {
  slots.table = buildSlotTable([{ record: record('old', 'old-0', '0-100', wrong.url), revision: 1 }]);
  slots.next = buildSlotTable([{ record: record('new', 'new-0', '0-100', right.url), revision: 2 }]);
}

describe('421 at the gateway', () => {
  const object = mintIdInSlot('o', 7);

  it('lists the map again and repeats a request without a body', async () => {
    staleMap();
    const answer = await send('GET', `/v1/objects/${object}`);
    expect(answer.status).toBe(200);
    expect(slots.refreshes).toBeGreaterThanOrEqual(1);
    expect(wrong.seen.at(-1)?.url).toBe(`/v1/objects/${object}`);
    expect(right.seen.at(-1)?.url).toBe(`/v1/objects/${object}`);
  });

  it('sends a small body again, byte for byte', async () => {
    staleMap();
    const body = Buffer.from(JSON.stringify({ kind: 'directory', pad: 'x'.repeat(10_000) }));
    const answer = await send('PUT', `/v1/objects/${object}/entries/a`, body);
    expect(answer).toEqual({ status: 200, body: { echoed: body.length } });
    expect(wrong.seen.at(-1)?.body.equals(body)).toBe(true);
    expect(right.seen.at(-1)?.body.equals(body)).toBe(true);
  });

  it('answers 503 partition_unavailable, never 421, when a streamed body had left', async () => {
    staleMap();
    const before = right.seen.length;
    const answer = await send('PUT', `/v1/objects/${object}/entries/big`, Buffer.alloc(200 * 1024, 1), true);
    expect(answer.status).toBe(503);
    expect((answer.body.error as { code: string }).code).toBe('partition_unavailable');
    expect(right.seen.length).toBe(before);
  });
});

describe('a draining member', () => {
  it('is set aside and the request goes to another member of the partition', async () => {
    slots.table = buildSlotTable([
      { record: record('p', 'p-0', '0-100', draining.url), revision: 1 },
      { record: record('p', 'p-1', '0-100', right.url), revision: 1 },
    ]);
    slots.next = undefined;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send('GET', `/v1/objects/${mintIdInSlot('o', 9)}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(draining.seen.length).toBeLessThanOrEqual(1);
  });
});
