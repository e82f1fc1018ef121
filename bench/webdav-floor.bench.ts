// What the WebDAV benchmark's small_files_ratio could be at best on this machine, given what a
// write must do. Not a benchmark of Meshwork: a bare WebDAV server written for this measurement
// answers `rclone copy` of 1,000 × 4 KiB files (the webdav bench's copy: vendor owncloud, 8
// transfers, MKCOL + PUT + PROPFIND per file), and the same copy straight to MinIO's S3 runs
// right before each of its steps. The server has no authentication, no routing, no logs, no
// metrics, no throttling, and keeps its folders in memory; each step adds one thing a write
// through Meshwork must do:
//
//   one process     the PUT's handler hashes the body (SHA1 and MD5 for oc:checksums,
//                   SHA-256 for the block), stores it in MinIO with the partition's BlockStore
//                   and commits one entry in etcd
//   two processes   the same store and commit in a second process
//                   (bench/fixtures/webdav-floor-store.ts), reached over loopback HTTP with
//                   keep-alive, as the gateway reaches a partition
//   + locks read    the first process reads the object's locks from etcd before each PUT
//                   (a PUT must be refused with 423 under another client's lock)
//   + holder        the second process records the block's holder in etcd while MinIO
//                   stores it (ADR 67), as the partition does
//   + checksums     the first process writes the file's SHA1 and MD5 to etcd after the commit
//
// Meshwork shares the lock reads of PUTs in flight and writes checksums in batches (ADR 87),
// which the last two steps do not; `npm run bench -- webdav` measures Meshwork itself.
//
// Usage: npm run bench -- webdav-floor [--quick] [--rounds N]   (--quick: 200 files, 1 round)
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { rcloneDavRemote, rcloneEnv, rcloneRemote, runRclone } from '../e2e/agent/rclone.ts';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { connectFloorStores, type FloorStores } from './fixtures/webdav-floor-stores.ts';
import { cpuSeconds } from './proc.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const roundsFlag = process.argv.indexOf('--rounds');
const rounds = roundsFlag > 0 ? Number(process.argv[roundsFlag + 1]) : quick ? 1 : 2;
const fileCount = quick ? 200 : 1000;
const transfers = ['--transfers', '8', '--checkers', '8'];

interface Step {
  name: string;
  twoProcesses: boolean;
  locksRead: boolean;
  holder: boolean;
  checksums: boolean;
}
const steps: Step[] = [
  { name: 'one process', twoProcesses: false, locksRead: false, holder: false, checksums: false },
  { name: 'two processes', twoProcesses: true, locksRead: false, holder: false, checksums: false },
  { name: '+ locks read', twoProcesses: true, locksRead: true, holder: false, checksums: false },
  { name: '+ holder', twoProcesses: true, locksRead: true, holder: true, checksums: false },
  { name: '+ checksums', twoProcesses: true, locksRead: true, holder: true, checksums: true },
];

const root = mkdtempSync(join(tmpdir(), 'meshwork-webdav-floor-'));
const [etcdServer, minio] = await Promise.all([startEtcd({ name: 'webdav-floor' }), startMinio({ bucket: 'webdav-floor' })]);
const stores: FloorStores = {
  etcd: etcdServer.endpoint,
  endpoint: minio.endpoint,
  bucket: minio.bucket,
  accessKey: minio.accessKey,
  secretKey: minio.secretKey,
};
const { etcd, blocks: store } = connectFloorStores(stores);
const second = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'webdav-floor-store.ts')], {
  env: {
    PATH: process.env.PATH,
    MESHWORK_FLOOR: JSON.stringify(stores),
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const secondPort = await new Promise<number>((resolve, reject) => {
  let out = '';
  second.once('exit', (code) => reject(new Error(`the second process exited with ${code}`)));
  second.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
  });
});
const secondAgent = new Agent({ keepAlive: true, maxSockets: 64 });

/** The second process's answer to one PUT: the committed revision. */
function forward(path: string, bytes: Buffer, mtime: string, holder: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-length': bytes.length, 'x-mtime': mtime, 'x-holder': holder ? '1' : '0' };
    const req = request({ host: '127.0.0.1', port: secondPort, method: 'PUT', path, agent: secondAgent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 201) reject(new Error(`the second process answered ${res.statusCode}`));
        else resolve((JSON.parse(Buffer.concat(chunks).toString()) as { version: string }).version);
      });
    });
    req.on('error', reject);
    req.end(bytes);
  });
}

// ---- the bare WebDAV server ----------------------------------------------------------------
interface Resource {
  folder: boolean;
  size: number;
  mtime: Date;
  etag: string;
  checksums?: string;
}
const tree = new Map<string, Resource>([['/', { folder: true, size: 0, mtime: new Date(), etag: '"0"' }]]);
let step: Step = steps[0]!;
let folderEtags = 0;

const pathOf = (url: string): string => decodeURIComponent(new URL(url, 'http://floor').pathname).replace(/\/+$/, '') || '/';
const parentOf = (path: string): string => path.slice(0, path.lastIndexOf('/')) || '/';
const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function describe(path: string, r: Resource): string {
  const href = escapeXml(encodeURI(r.folder && path !== '/' ? `${path}/` : path));
  const kind = r.folder
    ? '<d:resourcetype><d:collection/></d:resourcetype>'
    : `<d:resourcetype/><d:getcontentlength>${r.size}</d:getcontentlength><d:getcontenttype>application/octet-stream</d:getcontenttype>`;
  const sums = r.checksums === undefined ? '' : `<oc:checksums><oc:checksum>${r.checksums}</oc:checksum></oc:checksums>`;
  return `<d:response><d:href>${href}</d:href><d:propstat><d:prop><d:getlastmodified>${r.mtime.toUTCString()}</d:getlastmodified>${kind}<d:getetag>${r.etag}</d:getetag>${sums}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function put(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const bytes = await readAll(req);
  if (tree.get(parentOf(path))?.folder !== true) {
    res.writeHead(409, { 'content-length': 0 }).end();
    return;
  }
  const sha1 = createHash('sha1').update(bytes).digest('hex');
  const md5 = createHash('md5').update(bytes).digest('hex');
  const mtimeHeader = req.headers['x-oc-mtime'];
  const mtime = typeof mtimeHeader === 'string' ? new Date(Number(mtimeHeader) * 1000) : new Date();
  let version: string;
  if (step.twoProcesses) {
    if (step.locksRead) await etcd.getAll().prefix('floor/locks/object/').keys();
    version = await forward(path, bytes, mtime.toISOString(), step.holder);
  } else {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await store.put(sha256, bytes.length, Readable.from([bytes]));
    const key = `floor/entries${path}`;
    const entry = JSON.stringify({ path, size: bytes.length, blocks: [{ sha256, size: bytes.length }], mtime: mtime.toISOString() });
    const result = await etcd.if(key, 'Mod', '==', 0).then(etcd.put(key).value(entry)).commit();
    version = result.header.revision;
  }
  const checksums = `SHA1:${sha1} MD5:${md5}`;
  if (step.checksums) await etcd.put(`floor/checksums${path}`).value(checksums);
  const existed = tree.has(path);
  tree.set(path, { folder: false, size: bytes.length, mtime, etag: `"${version}"`, checksums });
  res.writeHead(existed ? 204 : 201, { etag: `"${version}"`, 'oc-etag': `"${version}"`, 'oc-fileid': version, 'content-length': 0 }).end();
}

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = pathOf(req.url ?? '/');
  switch (req.method) {
    case 'PUT':
      return put(req, res, path);
    case 'MKCOL':
      await readAll(req);
      if (tree.has(path)) res.writeHead(405, { 'content-length': 0 }).end();
      else if (tree.get(parentOf(path))?.folder !== true) res.writeHead(409, { 'content-length': 0 }).end();
      else {
        tree.set(path, { folder: true, size: 0, mtime: new Date(), etag: `"f${++folderEtags}"` });
        res.writeHead(201, { 'content-length': 0 }).end();
      }
      return;
    case 'PROPFIND': {
      await readAll(req);
      const resource = tree.get(path);
      if (resource === undefined) {
        res.writeHead(404, { 'content-length': 0 }).end();
        return;
      }
      let xml = `<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">${describe(path, resource)}`;
      if (resource.folder && req.headers.depth === '1') {
        const prefix = path === '/' ? '/' : `${path}/`;
        for (const [p, r] of tree) if (p !== path && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) xml += describe(p, r);
      }
      xml += '</d:multistatus>';
      res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8', 'content-length': Buffer.byteLength(xml) }).end(xml);
      return;
    }
    case 'OPTIONS':
      res.writeHead(200, { dav: '1, 2', 'content-length': 0 }).end();
      return;
    default:
      res.writeHead(405, { 'content-length': 0 }).end();
  }
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  serve(req, res).catch((err: unknown) => {
    console.error(`the bare server failed a ${req.method} request: ${String(err)}`);
    if (!res.headersSent) res.writeHead(500, { 'content-length': 0 }).end();
    else res.destroy();
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

// ---- the runs -----------------------------------------------------------------------------
interface Run {
  step: string;
  round: number;
  s3S: number;
  davS: number;
  cpu: { first: number; second: number; etcd: number; minio: number };
}
const runs: Run[] = [];
try {
  const s3 = rcloneEnv(minio, root);
  const dav = { ...s3, ...rcloneDavRemote('floor', { url: `http://127.0.0.1:${port}/`, user: 'floor', password: 'floor' }) };
  for (let round = 0; round < rounds; round++) {
    for (const [i, s] of steps.entries()) {
      step = s;
      // New bytes every time, so no block is in the store before its copy.
      const dir = join(root, `r${round}s${i}`);
      mkdirSync(dir);
      for (let f = 0; f < fileCount; f++) writeFileSync(join(dir, `f${String(f).padStart(4, '0')}.bin`), randomBytes(4096));
      const s3S = await runRclone(['copy', dir, `${rcloneRemote}:${minio.bucket}/s3-${round}-${i}`, ...transfers], s3);
      for (let f = 0; f < fileCount; f++) writeFileSync(join(dir, `f${String(f).padStart(4, '0')}.bin`), randomBytes(4096));
      // This process's own CPU comes from process.cpuUsage() below.
      const pids = [second.pid, etcdServer.process.child.pid, minio.process.child.pid];
      const before = pids.map((pid) => (pid === undefined ? 0 : cpuSeconds(pid)));
      const ownBefore = process.cpuUsage();
      const davS = await runRclone(['copy', dir, `floor:dav-${round}-${i}`, ...transfers], dav);
      const own = process.cpuUsage(ownBefore);
      const used = pids.map((pid, k) => (pid === undefined ? 0 : cpuSeconds(pid)) - before[k]!);
      runs.push({
        step: s.name,
        round,
        s3S,
        davS,
        cpu: { first: (own.user + own.system) / 1e6, second: used[0]!, etcd: used[1]!, minio: used[2]! },
      });
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  server.close();
  secondAgent.destroy();
  second.kill('SIGTERM');
  etcd.close();
  await Promise.all([etcdServer.stop(), minio.stop()]);
  rmSync(root, { recursive: true, force: true });
}

const fmt = (v: number, digits = 2): string => v.toFixed(digits);
const perFile = (seconds: number): string => fmt((seconds * 1000) / fileCount, 2);
printTable(
  ['step', 'round', 'bare webdav (s)', 's3 (s)', 'ratio', 'cpu ms/file: first', 'second', 'etcd', 'minio'],
  runs.map((r) => [
    r.step,
    String(r.round),
    fmt(r.davS),
    fmt(r.s3S),
    fmt(r.s3S / r.davS),
    perFile(r.cpu.first),
    perFile(r.cpu.second),
    perFile(r.cpu.etcd),
    perFile(r.cpu.minio),
  ]),
);
console.log(
  JSON.stringify({
    benchmark: 'webdav-floor',
    quick,
    files: fileCount,
    ratios: Object.fromEntries(
      steps.map((s) => [s.name, runs.filter((r) => r.step === s.name).map((r) => Number((r.s3S / r.davS).toFixed(3)))]),
    ),
  }),
);
