// Sync benchmark: Meshwork's partition against the same operations straight on MinIO and
// etcd, measured in the same run, on the same machine, from the same client process.
//
//   upload_ratio / download_ratio  a 1 GiB file (256 blocks of 4 MiB) through Meshwork with
//                                  @meshwork/client's streamed upload (hash, `missing` per batch,
//                                  PUT of the missing blocks 4 at a time, then the commit) and
//                                  streamed download into a Node stream (downloadToStream,
//                                  as a device writing to disk), versus the same 256 block PUTs (4 at a
//                                  time) and sequential block GETs straight on MinIO. The partition
//                                  runs with its defaults: the download's blocks are checked by the
//                                  checksum the store kept (ADR 77), not hashed again
//   small_files_ratio              10,000 files of 4 KiB committed (block + entry) at
//                                  concurrency 32, versus one etcd put + one MinIO put per file
//   changes_p50_ms                 `changes` for 100 modified entries in an object of 100,000
//   download_redirect_ratio        the same file block by block with the partition's download
//                                  redirects on (ADR 71): the entry's block list, the blocks'
//                                  presigned URLs from `POST /v1/blocks/locations` (256 at a
//                                  time, ADR 79), each block read from MinIO through its URL
//                                  (downloadBlocksToStream: one block's bytes after the other,
//                                  the next three asked for while one streams, each checked by
//                                  the checksum the store kept, ADR 78), versus the same
//                                  sequential GETs straight on MinIO
//   rss_mb_peak                    peak RSS (VmHWM) of the partition process during the 1 GiB transfers
//
// Usage: npm run bench -- sync [--quick]   (--quick: 64 MiB, 1,000 files, 10,000 entries)
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { Writable } from 'node:stream';
import { Etcd3 } from 'etcd3';
import { Client } from 'minio';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { MeshworkClient } from '@meshwork/client';
import { downloadBlocksToStream, downloadToStream, nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;
const blockSize = 4 * MiB;
const bigBlocks = quick ? 16 : 256;
const smallFiles = quick ? 1000 : 10_000;
const smallSize = 4096;
const smallConcurrency = 32;
const transferConcurrency = 4;
const bigEntries = quick ? 10_000 : 100_000;
const seedConcurrency = 64;
const changedEntries = 100;
const changesSamples = 30;

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` in flight. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function timed(task: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await task();
  return (performance.now() - start) / 1000;
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN');
  return Math.round(kb / 1024);
}

function check(status: number, expected: number, what: string): void {
  if (status !== expected) throw new Error(`${what} answered ${status}, expected ${expected}`);
}

const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-etcd' }), startMinio({ bucket: 'bench' })]);
// One device does all of this, far beyond a device's static bounds, at up to 64 requests at
// once: the bounds and the concurrency limit are lifted here, since this measures the data
// path (the overload benchmark measures the throttle).
const partition = await startPartition(
  { etcdEndpoint: etcd.endpoint, minio },
  {
    partition: 'bench',
    env: {
      MESHWORK_LOG_LEVEL: 'warn',
      ...unthrottledEnv,
      // Only block GETs are redirected; the content route the download above uses still streams.
      MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint,
      // Upload URLs are given only to a client that asks for them (toStore); the first upload does not.
      MESHWORK_S3_UPLOAD_REDIRECT: 'on',
    },
  },
);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const s3 = new Client({
  endPoint: minio.host,
  port: minio.port,
  useSSL: false,
  accessKey: minio.accessKey,
  secretKey: minio.secretKey,
  pathStyle: true,
  transportAgent: agent,
});
const kv = new Etcd3({ hosts: etcd.endpoint });
const rows: [string, string, string, string, string][] = [];

try {
  // The client over node:http with the same agent as the MinIO client of the baseline.
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken, fetch: nodeHttpFetch(agent) });
  const account = await admin.createUser('bench');
  const device = await admin.as(account.token).registerDeviceClient('bench-device');
  const objectId = (await device.createObject({ name: 'Bench' })).id;

  // --- 1 GiB up and down -------------------------------------------------------------------
  const pattern = randomBytes(blockSize);
  const makeBlock = (i: number, salt: number): Buffer => {
    const block = Buffer.from(pattern);
    block.writeUInt32BE(i, 0);
    block.writeUInt32BE(salt, 4);
    return block;
  };
  const rawUpload = await timed(() =>
    pool(bigBlocks, transferConcurrency, async (i) => void (await s3.putObject('bench', `raw/big/${i}`, makeBlock(i, 1), blockSize))),
  );
  const rawDownload = await timed(async () => {
    for (let i = 0; i < bigBlocks; i++) {
      const stream = await s3.getObject('bench', `raw/big/${i}`);
      for await (const chunk of stream) void chunk;
    }
  });
  // The client's streamed upload: blocks are made as the upload reads them, hashed, asked
  // about in batches, the missing ones PUT 4 at a time; the block list is committed at the end.
  function* bigFile(): Generator<Uint8Array> {
    for (let i = 0; i < bigBlocks; i++) yield makeBlock(i, 2);
  }
  const meshUpload = await timed(async () => {
    const result = await device.upload(objectId, 'big.bin', bigFile(), { ifNoneMatch: '*' }, { parallelism: transferConcurrency });
    if (!result.created || result.uploadedBlocks !== bigBlocks)
      throw new Error(`the upload sent ${result.uploadedBlocks} of ${bigBlocks} blocks`);
  });
  // The same upload with the partition's upload redirect on (ADR 80): each block PUT to its
  // presigned URL at the store, then confirmed; counted to be sure none went through the partition.
  let throughPartition = 0;
  const viaNode = nodeHttpFetch(agent);
  const direct = new MeshworkClient({
    baseUrl: partition.url,
    token: device.token,
    fetch: (input, init) => {
      if (init?.method === 'PUT' && (input as string).startsWith(`${partition.url}/v1/blocks/`)) throughPartition++;
      return viaNode(input, init);
    },
  });
  function* bigFileDirect(): Generator<Uint8Array> {
    for (let i = 0; i < bigBlocks; i++) yield makeBlock(i, 3);
  }
  const meshDirectUpload = await timed(async () => {
    const result = await direct.upload(
      objectId,
      'big-direct.bin',
      bigFileDirect(),
      { ifNoneMatch: '*' },
      { parallelism: transferConcurrency, toStore: true },
    );
    if (!result.created || result.uploadedBlocks !== bigBlocks)
      throw new Error(`the direct upload sent ${result.uploadedBlocks} of ${bigBlocks} blocks`);
  });
  if (throughPartition !== 0) throw new Error(`${throughPartition} of the direct upload's blocks went through the partition`);
  let downloaded = 0;
  const meshDownload = await timed(async () => {
    // The client's Node download, as a device writing to disk uses it, into a stream that counts.
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        downloaded += chunk.length;
        done();
      },
    });
    check((await downloadToStream(device, objectId, 'big.bin', sink)).status, 200, 'content GET');
  });
  if (downloaded !== bigBlocks * blockSize) throw new Error(`downloaded ${downloaded} bytes, expected ${bigBlocks * blockSize}`);
  let redirected = 0;
  const meshRedirectDownload = await timed(async () => {
    const answer = await device.getEntry(objectId, 'big.bin');
    if (answer.notModified || answer.entry.kind !== 'file') throw new Error('big.bin is not a file');
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        redirected += chunk.length;
        done();
      },
    });
    const { storeChecked } = await downloadBlocksToStream(device, answer.entry.blocks ?? [], sink);
    if (storeChecked !== bigBlocks) throw new Error(`the store vouched for ${storeChecked} of ${bigBlocks} blocks`);
  });
  if (redirected !== bigBlocks * blockSize)
    throw new Error(`redirected download got ${redirected} bytes, expected ${bigBlocks * blockSize}`);
  const rssPeak = peakRssMb(partition.process.pid);
  const bigMiB = (bigBlocks * blockSize) / MiB;
  const uploadRatio = rawUpload / meshUpload;
  const directUploadRatio = rawUpload / meshDirectUpload;
  const downloadRatio = rawDownload / meshDownload;
  const redirectRatio = rawDownload / meshRedirectDownload;
  rows.push([
    `upload ${bigMiB} MiB (MiB/s)`,
    (bigMiB / meshUpload).toFixed(0),
    (bigMiB / rawUpload).toFixed(0),
    uploadRatio.toFixed(2),
    '>= 0.8',
  ]);
  rows.push([
    `upload ${bigMiB} MiB straight to the store (MiB/s)`,
    (bigMiB / meshDirectUpload).toFixed(0),
    (bigMiB / rawUpload).toFixed(0),
    directUploadRatio.toFixed(2),
    '>= 0.8',
  ]);
  rows.push([
    `download ${bigMiB} MiB (MiB/s)`,
    (bigMiB / meshDownload).toFixed(0),
    (bigMiB / rawDownload).toFixed(0),
    downloadRatio.toFixed(2),
    '>= 0.8',
  ]);
  rows.push([
    `download ${bigMiB} MiB by blocks, redirected (MiB/s)`,
    (bigMiB / meshRedirectDownload).toFixed(0),
    (bigMiB / rawDownload).toFixed(0),
    redirectRatio.toFixed(2),
    '>= 0.95',
  ]);
  rows.push(['partition peak RSS (MiB)', String(rssPeak), '', '', '< 200']);

  // --- 10,000 small files -------------------------------------------------------------------
  const smallData = (i: number, salt: number): Buffer => {
    const data = randomBytes(smallSize);
    data.writeUInt32BE(i, 0);
    data.writeUInt32BE(salt, 4);
    return data;
  };
  const rawSmall = await timed(() =>
    pool(smallFiles, smallConcurrency, async (i) => {
      const data = smallData(i, 3);
      const sha = sha256Hex(data);
      await s3.putObject('bench', `raw/small/${sha}`, data, smallSize);
      await kv
        .put(`/bench/raw/${objectId}/small/${i}`)
        .value(JSON.stringify({ path: `small/${i}`, kind: 'file', size: smallSize, blocks: [{ sha256: sha, size: smallSize }] }))
        .exec();
    }),
  );
  const meshSmall = await timed(() =>
    pool(smallFiles, smallConcurrency, async (i) => {
      const data = smallData(i, 4);
      const sha = sha256Hex(data);
      await device.putBlock(data, { sha256: sha });
      const commit = await device.putEntry(
        objectId,
        `small/${i}`,
        { kind: 'file', blocks: [{ sha256: sha, size: smallSize }] },
        { ifNoneMatch: '*' },
      );
      check(commit.created ? 201 : 200, 201, 'small commit');
    }),
  );
  const smallRatio = rawSmall / meshSmall;
  rows.push([
    `${smallFiles} files of 4 KiB (files/s)`,
    (smallFiles / meshSmall).toFixed(0),
    (smallFiles / rawSmall).toFixed(0),
    smallRatio.toFixed(2),
    '>= 0.5',
  ]);

  // --- changes in a large object -----------------------------------------------------------------
  const largeObject = (await device.createObject({ name: 'Large' })).id;
  const versions: string[] = [];
  const seedSeconds = await timed(() =>
    pool(bigEntries, seedConcurrency, async (i) => {
      const res = await device.putEntry(largeObject, `d${String(i).padStart(6, '0')}`, { kind: 'directory' }, { ifNoneMatch: '*' });
      check(res.created ? 201 : 200, 201, 'seed commit');
      if (i % Math.floor(bigEntries / changedEntries) === 0) versions[i] = res.entry.version;
    }),
  );
  const listing = await device.listEntries(largeObject, { limit: 1 });
  const cursor = listing.cursor;
  for (const [i, version] of versions.entries()) {
    if (version === undefined) continue;
    const mtime = new Date().toISOString();
    const res = await device.putEntry(largeObject, `d${String(i).padStart(6, '0')}`, { kind: 'directory', mtime }, { ifMatch: version });
    check(res.created ? 201 : 200, 200, 'modify commit');
  }
  const samples: number[] = [];
  for (let s = 0; s < changesSamples; s++) {
    const start = performance.now();
    const res = await device.changes(largeObject, { cursor });
    samples.push(performance.now() - start);
    if (res.changes.length !== changedEntries)
      throw new Error(`changes returned ${res.changes.length} entries, expected ${changedEntries}`);
  }
  samples.sort((x, y) => x - y);
  const changesP50 = samples[Math.floor(samples.length / 2)]!;
  rows.push([`changes: ${changedEntries} of ${bigEntries} entries (ms, p50)`, changesP50.toFixed(1), '', '', '< 20']);
  rows.push([`  (seeded ${bigEntries} entries through the API at ${(bigEntries / seedSeconds).toFixed(0)} commits/s)`, '', '', '', '']);

  printTable(['measure', 'meshwork', 'baseline', 'ratio', 'target'], rows);
  console.log(
    JSON.stringify({
      benchmark: 'sync',
      quick,
      upload_ratio: Number(uploadRatio.toFixed(3)),
      upload_direct_ratio: Number(directUploadRatio.toFixed(3)),
      download_ratio: Number(downloadRatio.toFixed(3)),
      download_redirect_ratio: Number(redirectRatio.toFixed(3)),
      small_files_ratio: Number(smallRatio.toFixed(3)),
      changes_p50_ms: Number(changesP50.toFixed(2)),
      rss_mb_peak: rssPeak,
      upload_mib_s: Number((bigMiB / meshUpload).toFixed(1)),
      upload_baseline_mib_s: Number((bigMiB / rawUpload).toFixed(1)),
      download_mib_s: Number((bigMiB / meshDownload).toFixed(1)),
      download_baseline_mib_s: Number((bigMiB / rawDownload).toFixed(1)),
      small_files_per_s: Number((smallFiles / meshSmall).toFixed(1)),
      small_files_baseline_per_s: Number((smallFiles / rawSmall).toFixed(1)),
    }),
  );
} finally {
  kv.close();
  agent.destroy();
  await partition.stop();
  await Promise.all([etcd.stop(), minio.stop()]);
}
