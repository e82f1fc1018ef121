// Small downloads by presigned URL (ADR 90), against a real partition that redirects block reads
// to a real MinIO: a pass that downloads many small files asks the partition for their URLs in
// one request and reads each file from the store, never through `GET …/content/{path}`; a URL
// the store refuses is read through the partition instead, and every file arrives byte-exact.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { tempDirs } from '../../../e2e/harness/temp-dirs.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient } from '../client.ts';
import { openAgent } from './index.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
const temp = tempDirs();

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-small-downloads' }), startMinio({ bucket: 'small-downloads' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    { partition: 'small-downloads', env: { ...unthrottledEnv, MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint } },
  );
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

it('reads a pass of small files from the store by URLs asked for in one request, and a refused URL through the partition', async () => {
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = admin.as((await admin.createUser('carol')).token);
  const writer = user.as((await user.registerDevice('desktop')).token);
  const objectId = (await writer.createObject({ name: 'Notes' })).id;
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < 30; i++) files.set(`notes/${i}.txt`, randomBytes(100 + i * 50));
  files.set('empty.txt', new Uint8Array(0));
  for (const [path, bytes] of files) await writer.upload(objectId, path, bytes, { ifNoneMatch: '*' });

  // The reading device's requests: the partition's by method and route, the store's by count.
  const requests: string[] = [];
  let refused = 0;
  const storeHost = new URL(minio.endpoint).host;
  const counting: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    if (url.host === storeHost) {
      requests.push(`store ${method}`);
      // The first file's URL is refused, as the store refuses an expired one.
      if (refused === 0) {
        refused++;
        return new Response('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>', {
          status: 403,
          headers: { 'content-type': 'application/xml' },
        });
      }
    } else requests.push(`${method} ${url.pathname.replace(objectId, ':id').replace(/\/content\/.*/, '/content/*')}`);
    return fetch(input, init);
  };
  const home = temp('meshwork-small-downloads-');
  const dir = join(home, 'folder');
  const agent = await openAgent({
    client: new MeshworkClient({ baseUrl: partition.url, token: (await user.registerDevice('laptop')).token, fetch: counting }),
    dir,
    objectId,
    statePath: join(home, 'state', 'agent.db'),
    deviceName: 'laptop',
  });
  try {
    const report = await agent.syncOnce();
    expect(report.downloaded).toBe(files.size);
  } finally {
    await agent.close();
  }
  for (const [path, bytes] of files) expect(sha(readFileSync(join(dir, path))), path).toBe(sha(bytes));
  const count = (what: string): number => requests.filter((r) => r === what).length;
  expect(count('POST /v1/blocks/locations')).toBe(1);
  expect(count('GET /v1/objects/:id/content/*')).toBe(0);
  // Thirty files asked of the store by URL; the refused one again through the partition's
  // `GET /v1/blocks/{sha256}` (whose redirect to the store is followed inside that request).
  expect(refused).toBe(1);
  expect(count('store GET')).toBe(30);
  expect(requests.filter((r) => r.startsWith('GET /v1/blocks/'))).toHaveLength(1);
});
