// The gateway's HTTPS edge against a real partition: HTTP/2 and HTTP/1.1 offered by ALPN on one
// port, the API and a streamed upload over HTTP/2, and a certificate replaced in its directory
// (as the kubelet updates a mounted Secret) taken up by new connections while an HTTP/2
// session opened before keeps working. A device's relay (a WebSocket carrying HTTP/2, ADR 52)
// opened by a real `meshwork sync` through this edge, with the CA given as a user would
// (NODE_EXTRA_CA_CERTS), serves another device's remote download over it.
import type { X509Certificate } from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { get as httpsGet, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { LocalPki } from '../../../e2e/harness/pki.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { startGateway, type RunningGateway } from '../../../e2e/dataplane/gateway-process.ts';
import { AgentProcess, login, makeAgentHome, mustRunCli, parseJsonOutput } from '../../../e2e/agent/agent-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let gateway: RunningGateway;
let pki: LocalPki;
let ca: Buffer;
let tlsDir: string;
let userToken: string;
const sessions: ClientHttp2Session[] = [];

async function issueInto(name: string): Promise<void> {
  const pair = await pki.issue({ name, commonName: name, altNames: ['IP:127.0.0.1', 'DNS:localhost'], usage: 'server' });
  // As the kubelet does: new files beside the old, then each renamed over its predecessor.
  copyFileSync(pair.cert, join(tlsDir, 'tls.crt.new'));
  copyFileSync(pair.key, join(tlsDir, 'tls.key.new'));
  renameSync(join(tlsDir, 'tls.crt.new'), join(tlsDir, 'tls.crt'));
  renameSync(join(tlsDir, 'tls.key.new'), join(tlsDir, 'tls.key'));
}

/** The common name of the certificate a new TLS connection is shown. */
function servedName(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, ca, servername: 'localhost', ALPNProtocols: ['h2'] }, () => {
      const cert = socket.getPeerX509Certificate() as X509Certificate;
      socket.destroy();
      resolve(/CN=([^\n,]+)/.exec(cert.subject)?.[1] ?? '');
    });
    socket.on('error', reject);
  });
}

function h2Request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let responseHeaders: Record<string, unknown> = {};
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

function openSession(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(gateway.url, { ca, servername: 'localhost' });
    sessions.push(session);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'gateway-tls-etcd' }), startMinio({ bucket: 'gateway-tls' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'tls-p', env: { ...unthrottledEnv } });
  pki = await LocalPki.open(mkdtempSync(join(tmpdir(), 'meshwork-gateway-pki-')));
  ca = readFileSync(pki.caCert);
  tlsDir = mkdtempSync(join(tmpdir(), 'meshwork-gateway-tls-'));
  await issueInto('gateway-one');
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, tlsDir, ca, env: { MESHWORK_GATEWAY_HEADERS_TIMEOUT_SECONDS: '2' } });
  userToken = (await new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken }).createUser('tls')).token;
});

let syncing: AgentProcess | undefined;

afterAll(async () => {
  await syncing?.stop();
  for (const s of sessions) s.destroy();
  await Promise.all([gateway?.stop(), partition?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

describe('the HTTPS edge', () => {
  it('speaks HTTP/2 by ALPN and serves the API over it, a streamed upload included', async () => {
    const session = await openSession();
    expect(session.alpnProtocol).toBe('h2');
    const me = await h2Request(session, { ':method': 'GET', ':path': '/v1/me', authorization: `Bearer ${userToken}` });
    expect(me.status).toBe(200);
    expect((JSON.parse(me.body.toString()) as { name: string }).name).toBe('tls');
    // A block of 1 MiB: longer than the gateway holds, so it streams.
    const block = randomBytes(1024 * 1024);
    const sha = createHash('sha256').update(block).digest('hex');
    const put = await h2Request(
      session,
      { ':method': 'PUT', ':path': `/v1/blocks/${sha}`, authorization: `Bearer ${userToken}`, 'content-length': String(block.length) },
      block,
    );
    expect(put.status).toBe(201);
    const got = await h2Request(session, { ':method': 'GET', ':path': `/v1/blocks/${sha}`, authorization: `Bearer ${userToken}` });
    expect(got.status).toBe(200);
    expect(got.body.equals(block)).toBe(true);
  });

  it('speaks HTTP/1.1 to a client that offers only that', async () => {
    const answer = await new Promise<{ status: number; alpn: string | false }>((resolve, reject) => {
      const req = httpsGet(
        `${gateway.url}/readyz`,
        { ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] } as RequestOptions,
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, alpn: (res.socket as unknown as { alpnProtocol: string | false }).alpnProtocol });
        },
      );
      req.on('error', reject);
    });
    expect(answer).toEqual({ status: 200, alpn: 'http/1.1' });
  });

  it('answers 408 in the envelope to an HTTPS client that sends its headers too slowly', async () => {
    const started = performance.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('GET /v1/me HTTP/1.1\r\nHost: x\r\n');
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
    expect(answer).toContain('"code":"request_timeout"');
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('takes up a replaced certificate for new connections and keeps open sessions', async () => {
    const before = await openSession();
    expect(await servedName()).toBe('gateway-one');
    await issueInto('gateway-two');
    await waitFor(async () => ((await servedName()) === 'gateway-two' ? true : undefined), {
      description: 'the gateway to serve the new certificate',
      timeoutMs: 20_000,
    });
    const again = await h2Request(before, { ':method': 'GET', ':path': '/v1/me', authorization: `Bearer ${userToken}` });
    expect(again.status).toBe(200);
    expect(before.closed || before.destroyed).toBe(false);
  });
});

describe('a device relay through the HTTPS edge', () => {
  const note = randomBytes(300_000);

  it('serves a file from a device whose relay runs over TLS and ALPN through the gateway', async () => {
    const home = await makeAgentHome('laptop');
    // How a user trusts a private CA for a Node program.
    home.env.NODE_EXTRA_CA_CERTS = pki.caCert;
    try {
      await login(home, gateway.url, userToken);
      const deviceId = (JSON.parse(readFileSync(join(home.dir, 'config', 'config.json'), 'utf8')) as { deviceId: string }).deviceId;
      const objectId = parseJsonOutput<{ id: string }>(await mustRunCli(home, ['objects', 'create', 'Notes', '--no-cloud', '--json'])).id;
      const folder = join(home.dir, 'Notes');
      mkdirSync(folder);
      writeFileSync(join(folder, 'note.bin'), note);
      syncing = await AgentProcess.start(home, folder, objectId);

      // Another client of the same user, over HTTP/2 to the same edge.
      const session = await openSession();
      const path = `/v1/devices/${deviceId}/remote/files/${objectId}/note.bin`;
      const got = await waitFor(
        async () => {
          const answer = await h2Request(session, { ':method': 'GET', ':path': path, authorization: `Bearer ${userToken}` });
          return answer.status === 200 ? answer : undefined;
        },
        {
          description: "the laptop's file through its relay",
          timeoutMs: 30_000,
          intervalMs: 250,
          abortIf: () => (syncing?.exitStatus !== undefined ? syncing.otherLines.join('\n') : undefined),
        },
      );
      expect(got.body.equals(note)).toBe(true);
    } finally {
      await syncing?.stop();
      syncing = undefined;
      rmSync(home.dir, { recursive: true, force: true });
    }
  }, 90_000);
});
