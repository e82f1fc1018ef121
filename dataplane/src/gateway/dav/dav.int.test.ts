// WebDAV at /dav/ on a real gateway, partition, etcd and MinIO: litmus's suites all pass; rclone
// (webdav, vendor owncloud) syncs a tree of 1,000 files with Unicode names, empty files, nested
// folders and a 100 MiB file, `rclone check` finds the hashes identical and a second sync sends
// nothing; WebDAV, the API and a device agent see the same entries with the same ETags; a lock held by one
// client makes another's PUT 423 until UNLOCK; app passwords, roles, and bad input.
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'minio';
import { MeshworkClient } from '@meshwork/client';
import { startDavStack, type DavStack } from '../../../../e2e/dataplane/dav-stack.ts';
import { login, makeAgentHome, syncOnce } from '../../../../e2e/agent/agent-process.ts';
import { rcloneBinary, rcloneDavRemote } from '../../../../e2e/agent/rclone.ts';

const run = promisify(execFile);
let stack: DavStack;
let work: string;

const basic = (password: string, user = 'someone'): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function dav(method: string, path: string, init: { password?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.password !== '') headers.authorization = basic(init.password ?? stack.appPassword);
  return fetch(`${stack.gateway.url}${path}`, { method, headers, body: init.body });
}

/** A request whose path is sent as written (fetch would resolve its dot segments). */
function rawDav(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${stack.gateway.url}/`,
      { method, path, headers: { ...headers, authorization: basic(stack.appPassword) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function expectHealthy(): Promise<void> {
  expect((await fetch(`${stack.gateway.url}/readyz`)).status).toBe(200);
  expect(stack.gateway.process.exitStatus).toBeUndefined();
}

beforeAll(async () => {
  // Block uploads go to the store where the partition allows it (ADR 80), as the benchmark runs.
  stack = await startDavStack('dav', 'files', { uploadsToStore: true });
  work = mkdtempSync(join(tmpdir(), 'meshwork-dav-'));
});

afterAll(async () => {
  await stack?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('litmus', () => {
  it('passes every test of the basic, copymove, props, locks and http suites', async () => {
    await dav('MKCOL', '/dav/files/litmus-root/');
    const { stdout } = await run('litmus', [`${stack.objectUrl}litmus-root/`, 'user', stack.appPassword], {
      timeout: 120_000,
      cwd: work,
      env: { ...process.env, TESTS: 'basic copymove props locks http' },
    });
    const summaries = [...stdout.matchAll(/<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g)];
    expect(summaries.map((m) => m[1])).toEqual(['basic', 'copymove', 'props', 'locks', 'http']);
    for (const m of summaries) expect(m[4], `litmus ${m[1]} failures:\n${stdout}`).toBe('0');
    // No warning either (a DELETE with a fragment is refused, not applied to the collection).
    expect(stdout).not.toMatch(/WARNING/);
  });
});

describe('app passwords', () => {
  it('answers 401 with a Basic challenge to no credentials, an account token and a wrong password', async () => {
    for (const password of ['', 'wrong', `mwd.nobody.${'x'.repeat(43)}`, stack.accountToken]) {
      const res = await dav('PROPFIND', '/dav/', { password, headers: { depth: '0' } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="Meshwork"/);
    }
  });

  it('stops accepting a device token once the device is deleted', async () => {
    const app = await stack.account.registerDevice('short-lived');
    expect((await dav('PROPFIND', '/dav/', { password: app.token, headers: { depth: '0' } })).status).toBe(207);
    await stack.account.deleteDevice(app.id);
    // The gateway reuses an object list for a second; the partition refuses the token within 5 s.
    let status = 0;
    for (let i = 0; i < 100 && status !== 401; i++) {
      status = (await dav('PROPFIND', '/dav/files/', { password: app.token, headers: { depth: '1' } })).status;
      if (status !== 401) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(401);
  });
});

describe('WebDAV and the API', () => {
  it('shows a file PUT through WebDAV in changes, with the same ETag', async () => {
    const { cursor } = await stack.device.listAllEntries(stack.object.id);
    const put = await dav('PUT', '/dav/files/from-dav.txt', { body: 'hello from WebDAV', headers: { 'x-oc-mtime': '1700000000' } });
    expect(put.status).toBe(201);
    expect(put.headers.get('x-oc-mtime')).toBe('accepted');
    const { changes } = await stack.device.listAllChanges(stack.object.id, { cursor });
    const entry = changes.find((e) => e.path === 'from-dav.txt');
    expect(entry?.size).toBe(17);
    expect(entry?.mtime).toBe('2023-11-14T22:13:20.000Z');
    expect(put.headers.get('etag')).toBe(`"${entry?.version}"`);
    const props = await (await dav('PROPFIND', '/dav/files/from-dav.txt', { headers: { depth: '0' } })).text();
    expect(props).toContain(`<d:getetag>"${entry?.version}"</d:getetag>`);
    expect(props).toMatch(/<oc:checksum>SHA1:[0-9a-f]{40} MD5:[0-9a-f]{32}<\/oc:checksum>/);
  });

  it('serves a file committed through the API with its ETag, ranges and conditionals', async () => {
    const data = randomBytes(300_000);
    const { etag } = await stack.device.upload(stack.object.id, 'from-api.bin', data, { ifNoneMatch: '*' });
    const get = await dav('GET', '/dav/files/from-api.bin');
    expect(get.status).toBe(200);
    expect(get.headers.get('etag')).toBe(etag);
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
    const range = await dav('GET', '/dav/files/from-api.bin', { headers: { range: 'bytes=10-19' } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
    expect((await dav('GET', '/dav/files/from-api.bin', { headers: { 'if-none-match': etag! } })).status).toBe(304);
    expect((await dav('PUT', '/dav/files/from-api.bin', { body: 'x', headers: { 'if-match': '"1"' } })).status).toBe(412);
  });

  it("hands a file PUT through WebDAV to a device agent, and serves the agent's file with the ETag of its commit", async () => {
    const home = await makeAgentHome('dav-laptop');
    const folder = join(home.dir, 'folder');
    try {
      const put = await dav('PUT', '/dav/files/for-agent.txt', { body: 'written through WebDAV', headers: { 'x-oc-mtime': '1700000000' } });
      expect(put.status).toBe(201);
      await login(home, stack.gateway.url, stack.accountToken);
      const first = await syncOnce(home, folder, stack.object.id);
      expect(first.events.some((e) => e.type === 'committed' && e.path === 'for-agent.txt' && e.direction === 'down')).toBe(true);
      expect(readFileSync(join(folder, 'for-agent.txt'), 'utf8')).toBe('written through WebDAV');
      // The mtime that X-OC-Mtime gave the WebDAV upload is the file's on the device.
      expect(statSync(join(folder, 'for-agent.txt')).mtimeMs).toBe(1_700_000_000_000);

      writeFileSync(join(folder, 'from-agent.txt'), 'written on the laptop');
      const second = await syncOnce(home, folder, stack.object.id);
      const committed = second.events.find((e) => e.type === 'committed' && e.path === 'from-agent.txt' && e.direction === 'up');
      expect(committed).toBeDefined();
      const get = await dav('GET', '/dav/files/from-agent.txt');
      expect(get.status).toBe(200);
      expect(await get.text()).toBe('written on the laptop');
      expect(get.headers.get('etag')).toBe(`"${(committed as { version: string }).version}"`);
    } finally {
      rmSync(home.dir, { recursive: true, force: true });
    }
  });

  it('reads back a PUT as committed, and shows every later write: through WebDAV at once, through the API within a second', async () => {
    // Depth 1, as rclone reads back: a file has nothing below it.
    const etagOf = async (password?: string): Promise<string | undefined> => {
      const answer = await dav('PROPFIND', '/dav/files/read-back.txt', { headers: { depth: '1' }, ...(password ? { password } : {}) });
      if (answer.status === 404) return undefined;
      const text = await answer.text();
      expect(text.match(/<d:response>/g)).toHaveLength(1);
      return /<d:getetag>("[^"]+")<\/d:getetag>/.exec(text)?.[1];
    };
    const put = await dav('PUT', '/dav/files/read-back.txt', { body: 'v1' });
    expect(put.status).toBe(201);
    expect(await etagOf()).toBe(put.headers.get('etag'));
    // Dead properties set since the PUT are shown.
    const proppatch = `<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:test"><d:set><d:prop><z:colour>blue</z:colour></d:prop></d:set></d:propertyupdate>`;
    expect((await dav('PROPPATCH', '/dav/files/read-back.txt', { body: proppatch })).status).toBe(207);
    const body = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:z="urn:test"><d:prop><z:colour/><d:lockdiscovery/></d:prop></d:propfind>`;
    expect(await (await dav('PROPFIND', '/dav/files/read-back.txt', { headers: { depth: '0' }, body })).text()).toContain('blue');
    // Another app password's write is seen by the first at once.
    const other = await stack.account.registerDevice('read-back-app');
    const second = await dav('PUT', '/dav/files/read-back.txt', { body: 'v2' });
    const third = await dav('PUT', '/dav/files/read-back.txt', { password: other.token, body: 'v3' });
    expect(third.status).toBe(204);
    expect(await etagOf()).toBe(third.headers.get('etag'));
    expect(third.headers.get('etag')).not.toBe(second.headers.get('etag'));
    // A lock taken since the PUT is discovered.
    const lockinfo = `<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>`;
    const fourth = await dav('PUT', '/dav/files/read-back.txt', { body: 'v4' });
    const lock = await dav('LOCK', '/dav/files/read-back.txt', { body: lockinfo, headers: { timeout: 'Second-60' } });
    expect(lock.status).toBe(200);
    const token = lock.headers.get('lock-token')!.slice(1, -1);
    expect(await (await dav('PROPFIND', '/dav/files/read-back.txt', { headers: { depth: '0' }, body })).text()).toContain(token);
    expect((await dav('UNLOCK', '/dav/files/read-back.txt', { headers: { 'lock-token': `<${token}>` } })).status).toBe(204);
    expect(await etagOf()).toBe(fourth.headers.get('etag'));
    // A write through the API is shown within a second of the PUT (the read-back's time to live).
    const fifth = await dav('PUT', '/dav/files/read-back.txt', { body: 'v5' });
    const viaApi = await stack.device.upload(stack.object.id, 'read-back.txt', Buffer.from('v6'), {
      ifMatch: fifth.headers.get('etag')!,
    });
    const deadline = Date.now() + 10_000;
    while ((await etagOf()) !== viaApi.etag && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await etagOf()).toBe(viaApi.etag);
    // A delete through WebDAV is seen at once.
    expect((await dav('PUT', '/dav/files/read-back.txt', { body: 'v7' })).status).toBe(204);
    expect((await dav('DELETE', '/dav/files/read-back.txt')).status).toBe(204);
    expect(await etagOf()).toBeUndefined();
  });

  it('reports the quota of GET /v1/me', async () => {
    const body = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/></d:prop></d:propfind>`;
    const text = await (await dav('PROPFIND', '/dav/files/', { headers: { depth: '0' }, body })).text();
    const used = Number(/<d:quota-used-bytes>(\d+)<\/d:quota-used-bytes>/.exec(text)?.[1]);
    expect(used).toBe((await stack.device.me()).storage.usedBytes);
  });
});

describe('locks between clients', () => {
  it('answers another client 423 on PUT while a lock is held, and takes the PUT after UNLOCK', async () => {
    const other = await stack.account.registerDevice('other-app');
    expect((await dav('PUT', '/dav/files/locked.txt', { body: 'v1' })).status).toBe(201);
    const lockinfo = `<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype><d:owner>a</d:owner></d:lockinfo>`;
    const lock = await dav('LOCK', '/dav/files/locked.txt', { body: lockinfo, headers: { timeout: 'Second-60' } });
    expect(lock.status).toBe(200);
    const token = lock.headers.get('lock-token')!;
    expect(token).toMatch(/^<opaquelocktoken:/);
    expect((await dav('PUT', '/dav/files/locked.txt', { password: other.token, body: 'v2' })).status).toBe(423);
    // Even with the token: it is the first client's lock.
    expect((await dav('PUT', '/dav/files/locked.txt', { password: other.token, body: 'v2', headers: { if: `(${token})` } })).status).toBe(
      423,
    );
    expect((await dav('PUT', '/dav/files/locked.txt', { body: 'v2', headers: { if: `(${token})` } })).status).toBe(204);
    expect((await dav('UNLOCK', '/dav/files/locked.txt', { headers: { 'lock-token': token } })).status).toBe(204);
    expect((await dav('PUT', '/dav/files/locked.txt', { password: other.token, body: 'v3' })).status).toBe(204);
  });
});

describe('roles', () => {
  it('gives a reader 403 on writes and a non-member 404', async () => {
    const reader = await stack.admin.createUser('reader');
    const readerDevice = await new MeshworkClient({ baseUrl: stack.gateway.url, token: reader.token }).registerDevice('app');
    await stack.device.setMember(stack.object.id, reader.id, 'reader');
    const outsider = await stack.admin.createUser('outsider');
    const outsiderDevice = await new MeshworkClient({ baseUrl: stack.gateway.url, token: outsider.token }).registerDevice('app');
    expect((await dav('GET', '/dav/files/from-dav.txt', { password: readerDevice.token })).status).toBe(200);
    for (const [method, headers] of [
      ['PUT', {}],
      ['DELETE', {}],
      ['MKCOL', {}],
      ['MOVE', { destination: '/dav/files/moved.txt' }],
    ] as const) {
      const path = method === 'MKCOL' ? '/dav/files/newdir/' : '/dav/files/from-dav.txt';
      expect((await dav(method, path, { password: readerDevice.token, headers, body: method === 'PUT' ? 'x' : undefined })).status).toBe(
        403,
      );
    }
    expect((await dav('GET', '/dav/files/from-dav.txt', { password: outsiderDevice.token })).status).toBe(404);
    expect((await dav('PROPFIND', '/dav/files/', { password: outsiderDevice.token, headers: { depth: '0' } })).status).toBe(404);
  });
});

describe('bad input', () => {
  const bomb =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><d:propfind xmlns:d="DAV:"><d:prop><d:getetag>&lol2;</d:getetag></d:prop></d:propfind>';
  const patch = (value: string): string =>
    `<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x:p xmlns:x="urn:x">${value}</x:p></d:prop></d:set></d:propertyupdate>`;

  it.each([
    ['malformed XML', 'PROPFIND', '/dav/files/', { depth: '0' }, '<d:propfind xmlns:d="DAV:"><d:prop>', 400],
    ['an XML bomb', 'PROPFIND', '/dav/files/', { depth: '0' }, bomb, 400],
    ['an entity in PROPPATCH', 'PROPPATCH', '/dav/files/from-dav.txt', {}, patch('&undefined;'), 400],
    ['a huge PROPFIND body', 'PROPFIND', '/dav/files/', { depth: '0' }, `<a>${'x'.repeat(1024 * 1024)}</a>`, 413],
    ['Depth: infinity', 'PROPFIND', '/dav/files/', { depth: 'infinity' }, '', 403],
    ['a .. segment', 'PUT', '/dav/files/a/../escape.txt', {}, 'x', 400],
    ['an encoded .. segment', 'PUT', '/dav/files/%2e%2e/escape.txt', {}, 'x', 400],
    ['an encoded slash', 'PUT', '/dav/files/a%2Fb.txt', {}, 'x', 400],
    ['a segment that does not decode', 'PUT', '/dav/files/%ff%zz.txt', {}, 'x', 400],
    ['a method WebDAV does not have', 'REPORT', '/dav/files/', {}, undefined, 405],
    ['a method HTTP does not have', 'BREW', '/dav/files/', {}, undefined, 400],
    ['a Destination with ..', 'COPY', '/dav/files/from-dav.txt', { destination: '/dav/files/x/../../y' }, undefined, 400],
    ['a lockinfo that is not one', 'LOCK', '/dav/files/from-dav.txt', {}, '<a xmlns="DAV:"/>', 400],
    ['a malformed If header', 'PUT', '/dav/files/if.txt', { if: '(<unclosed' }, 'x', 400],
  ] as const)('refuses %s', async (_what, method, path, headers, body, status) => {
    const res = await rawDav(method, path, headers, body);
    expect(res.status).toBe(status);
    if (status === 403) expect(res.text).toContain('<d:propfind-finite-depth/>');
  });

  it('refuses a body that does not match its OC-Checksum, and takes one that does', async () => {
    const body = randomBytes(5 * 1024 * 1024 + 3); // two blocks
    const sha1 = createHash('sha1').update(body).digest('hex');
    const md5 = createHash('md5').update(body).digest('hex');
    const wrong = await dav('PUT', '/dav/files/checksum-wrong.bin', { body, headers: { 'oc-checksum': `SHA1:${'0'.repeat(40)}` } });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('OC-Checksum');
    const wrongMd5 = await dav('PUT', '/dav/files/checksum-wrong.bin', { body: 'small', headers: { 'oc-checksum': `MD5:${md5}` } });
    expect(wrongMd5.status).toBe(400);
    expect((await dav('HEAD', '/dav/files/checksum-wrong.bin')).status).toBe(404);
    for (const [name, header] of [
      ['checksum-sha1.bin', `SHA1:${sha1.toUpperCase()}`],
      ['checksum-md5.bin', `MD5:${md5}`],
    ] as const) {
      expect((await dav('PUT', `/dav/files/${name}`, { body, headers: { 'oc-checksum': header } })).status).toBe(201);
      const got = Buffer.from(await (await dav('GET', `/dav/files/${name}`)).arrayBuffer());
      expect(got.equals(body)).toBe(true);
    }
  });

  it('stores nothing of an upload that breaks off', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${stack.gateway.url}/dav/files/broken-off.bin`, {
        method: 'PUT',
        headers: { authorization: basic(stack.appPassword), 'content-length': String(10 * 1024 * 1024) },
      });
      req.on('error', () => resolve());
      req.write(randomBytes(5 * 1024 * 1024), () => setImmediate(() => req.destroy()));
      req.on('close', () => resolve());
    });
    // Nor later: the last test of this group lists the object's entries again.
    expect((await dav('HEAD', '/dav/files/broken-off.bin')).status).toBe(404);
  });

  it('stored nothing from any of them and stays healthy', async () => {
    const { entries } = await stack.device.listAllEntries(stack.object.id);
    expect(entries.filter((e) => /escape|if\.txt|a\/b|broken-off|checksum-wrong/.test(e.path))).toEqual([]);
    const props = await (await dav('PROPFIND', '/dav/files/from-dav.txt', { headers: { depth: '0' } })).text();
    expect(props).not.toContain('urn:x');
    await expectHealthy();
  });
});

describe('telemetry', () => {
  const davCount = async (method: string, status: string): Promise<number> => {
    const text = await (await fetch(`${stack.gateway.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('meshwork_http_request_duration_seconds_count{') &&
          l.includes(`method="${method}"`) &&
          l.includes('route="/dav"') &&
          l.includes(`status="${status}"`),
      );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('counts, times and logs every WebDAV request by method and route, never by path', async () => {
    const [propfinds, mkcols] = await Promise.all([davCount('PROPFIND', '207'), davCount('MKCOL', '405')]);
    expect((await dav('PROPFIND', '/dav/files/telemetry-secret-name.txt', { headers: { depth: '0' } })).status).toBe(404);
    expect((await dav('PROPFIND', '/dav/files/', { headers: { depth: '0' } })).status).toBe(207);
    expect((await dav('MKCOL', '/dav/files/')).status).toBe(405);
    expect(await davCount('PROPFIND', '207')).toBe(propfinds + 1);
    expect(await davCount('MKCOL', '405')).toBe(mkcols + 1);
    expect(await davCount('PROPFIND', '404')).toBeGreaterThanOrEqual(1);
    const served = () =>
      readFileSync(stack.gateway.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"Served request"') && l.includes('"route":"/dav"'));
    // The line is written once the answer is closed, which may be just after the client read it.
    await expect.poll(() => served().some((l) => l.includes('"method":"MKCOL"') && l.includes('"status":405'))).toBe(true);
    expect(served().some((l) => l.includes('"method":"PROPFIND"') && l.includes('"status":404'))).toBe(true);
    expect(readFileSync(stack.gateway.logFile, 'utf8')).not.toContain('telemetry-secret-name');
  });
});

describe('rclone', () => {
  it('syncs 1,000 files with Unicode names, empty files, folders and 100 MiB; check finds them identical; a second sync sends nothing', async () => {
    const tree = join(work, 'tree');
    const names = ['café', 'naïve', '日本語', 'Ελληνικά', 'emoji-🙂', 'space name', 'Ünïcödé'];
    for (let i = 0; i < 999; i++) {
      const dir = join(tree, `dir${i % 10}-${names[i % 7]}`, `sub${i % 3}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${names[i % 7]}-${i}.txt`), i % 50 === 0 ? Buffer.alloc(0) : randomBytes(1 + (i % 4096)));
    }
    writeFileSync(join(tree, 'big.bin'), randomBytes(100 * 1024 * 1024));
    const env = {
      ...process.env,
      RCLONE_CONFIG: join(work, 'rclone.conf'),
      ...rcloneDavRemote('dav', { url: `${stack.objectUrl}synced/`, user: 'user', password: stack.appPassword }),
    };
    await dav('MKCOL', '/dav/files/synced/');
    const rclone = (...args: string[]) => run(rcloneBinary(), [...args, '--transfers', '8', '--checkers', '8'], { env, timeout: 300_000 });
    await rclone('sync', tree, 'dav:');
    const check = await rclone('check', tree, 'dav:');
    const checked = check.stderr + check.stdout;
    expect(checked).toContain('0 differences found');
    expect(checked).toContain('1000 matching files');
    expect(checked).not.toContain('hashes could not be checked');
    const again = await rclone('sync', tree, 'dav:', '-v');
    expect(again.stderr + again.stdout).toContain('There was nothing to transfer');
    const { entries } = await stack.device.listAllEntries(stack.object.id);
    expect(entries.filter((e) => e.kind === 'file' && e.path.startsWith('synced/'))).toHaveLength(1000);
    // The large file's blocks went to the store through presigned URLs (ADR 80): each carries an upload tag.
    const big = entries.find((e) => e.path === 'synced/big.bin');
    const s3 = new Client({
      endPoint: stack.minio.host,
      port: stack.minio.port,
      useSSL: false,
      accessKey: stack.minio.accessKey,
      secretKey: stack.minio.secretKey,
      pathStyle: true,
    });
    const tags = await Promise.all(
      (big?.blocks ?? []).map(
        async (b) => (await s3.statObject(stack.minio.bucket, `blocks/${b.sha256}`)).metaData['meshwork-upload'] as unknown,
      ),
    );
    expect(tags).toHaveLength(25);
    expect(tags.every((t) => typeof t === 'string' && t.length === 32)).toBe(true);
    await expectHealthy();
  }, 480_000);
});
