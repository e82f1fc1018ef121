// The web UI in a real browser: Chromium (the Debian package) driven headless by playwright-core
// against a gateway and a partition with real etcd and MinIO, serving a fresh build of web/.
// A person signs in, creates a shared folder and a folder in it, uploads three files (one of
// 20 MiB, its progress seen moving), downloads it back (sha256 compared), shares the folder
// with a second person as a reader (who sees it and cannot delete), deletes a file and signs
// out. An online device of alice's (a real `meshwork sync`, its relay through the gateway) is
// browsed and a file downloaded from it, then said to be offline once it stops. Every page is
// checked by axe-core (no serious or critical violations) and screenshotted under
// test-results/web/. Security: the gateway's headers, the cookie's flags, a form posted
// from another site is refused, and ten wrong passwords lock sign-in (429 with Retry-After).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { AgentProcess, createObject, login, makeAgentHome } from '../agent/agent-process.ts';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { freePort } from '../harness/ports.ts';
import { startGateway, type RunningGateway } from '../dataplane/gateway-process.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../dataplane/partition-process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const artefacts = join(repoRoot, 'test-results/web');
const chromiumPath = process.env.MESHWORK_CHROMIUM ?? '/usr/bin/chromium';
const axeSource = readFileSync(join(repoRoot, 'node_modules/axe-core/axe.min.js'), 'utf8');

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let gateway: RunningGateway;
let browser: Browser;
let evil: Server;
let evilPort: number;
let uploadPaths: string[];
let resumePath: string;
const MiB = 1024 * 1024;
const people = { alice: { id: '', token: '' }, bob: { id: '', token: '' } };
const password = 'a web password for tests';
const big = new Uint8Array(randomBytes(20 * 1024 * 1024));
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  const webDir = mkdtempSync(join(tmpdir(), 'meshwork-web-'));
  const build = promisify(execFile)(
    join(repoRoot, 'node_modules/.bin/vite'),
    ['build', '--outDir', webDir, '--emptyOutDir', '--logLevel', 'error'],
    {
      cwd: join(repoRoot, 'web'),
    },
  );
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-web' }), startMinio({ bucket: 'web' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'web', env: unthrottledEnv });
  await build;
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_GATEWAY_WEB_DIR: webDir } });
  const admin = new MeshworkClient({ baseUrl: gateway.url, token: partition.adminToken, retry: { maxAttempts: 1 } });
  for (const name of ['alice', 'bob'] as const) {
    const user = await admin.createUser(name);
    people[name] = { id: user.id, token: user.token };
    const set = await admin.raw('PUT', `/v1/users/${user.id}/password`, { body: { password } });
    if (set.status !== 204) throw new Error(`setting ${name}'s password answered ${set.status}`);
  }
  // A device of alice's, for the devices page.
  await admin.as(people.alice.token).registerDevice('alice-laptop');
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'], headless: true });
  // Another site (localhost is another site than 127.0.0.1) with a form that posts to the mesh.
  evilPort = await freePort();
  evil = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(
      `<!doctype html><html lang="en"><title>evil</title><form method="POST" action="${gateway.url}/v1/objects" enctype="text/plain">` +
        `<input name='{"name":"planted","x":"' value='"}'><button>go</button></form></html>`,
    );
  });
  await new Promise<void>((done) => evil.listen(evilPort, '127.0.0.1', done));
  mkdirSync(artefacts, { recursive: true });
  const uploads = mkdtempSync(join(tmpdir(), 'meshwork-upload-'));
  const files: [string, Uint8Array][] = [
    ['hello.txt', Buffer.from('hello, mesh\n')],
    ['notes.md', Buffer.from('# Notes\n')],
    ['big.bin', big],
  ];
  for (const [name, bytes] of files) writeFileSync(join(uploads, name), bytes);
  uploadPaths = files.map(([name]) => join(uploads, name));
  resumePath = join(uploads, 'again.bin');
  writeFileSync(resumePath, randomBytes(20 * MiB));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((done) => (evil ? evil.close(done) : done(undefined)));
  await Promise.all([gateway?.stop(), partition?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** Runs axe-core on the page and answers its serious and critical violations. */
async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's own policy refuses inline scripts, as it should.
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } }
    ).axe;
    return axe.run();
  });
  return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.nodes.length})`);
}

/** Checks a page with axe and saves its screenshot. */
async function checkPage(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artefacts, `${name}.png`), fullPage: true });
  expect(await seriousViolations(page), `axe on ${name}`).toEqual([]);
}

async function signIn(context: BrowserContext, who: { id: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto(gateway.url);
  await page.getByLabel('User id').fill(who.id);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Shared folders' }).waitFor();
  return page;
}

describe('the web UI', () => {
  let alice: BrowserContext;
  let page: Page;

  it('is served with a strict policy, security headers and immutable hashed assets', async () => {
    const index = await fetch(`${gateway.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${gateway.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${gateway.url}/assets/nothing.js`)).status).toBe(404);
    // No external resources: every src and href is on the page's own origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('signs a person in with an HttpOnly, SameSite=Lax cookie', async () => {
    alice = await browser.newContext({ viewport: { width: 1000, height: 800 }, acceptDownloads: true });
    const signInPage = await alice.newPage();
    await signInPage.goto(gateway.url);
    await signInPage.getByRole('heading', { name: 'Sign in to Meshwork' }).waitFor();
    await checkPage(signInPage, '1-sign-in');
    // A wrong password says so.
    await signInPage.getByLabel('User id').fill(people.alice.id);
    await signInPage.getByLabel('Password').fill('not the password at all');
    await signInPage.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => signInPage.getByRole('alert').textContent()).toContain('wrong');
    await signInPage.close();
    page = await signIn(alice, people.alice);
    const cookie = (await alice.cookies()).find((c) => c.name === 'mw_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false, path: '/' });
    // Scripts in the page cannot read it (the DOM code is a string: this file is compiled for Node).
    expect(await page.evaluate<string>('document.cookie')).not.toContain('mw_session');
  });

  it('creates a shared folder and a folder in it', async () => {
    await page.getByLabel('New shared folder').fill('Projects');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    await page.getByLabel('New folder').fill('docs');
    await page.getByRole('button', { name: 'Create folder' }).click();
    await page.getByRole('link', { name: 'docs/' }).click();
    await page.getByRole('navigation', { name: 'Breadcrumbs' }).getByText('docs').waitFor();
    await page.getByText('This folder is empty.').waitFor();
  });

  it('uploads three files, one of 20 MiB, showing progress', async () => {
    // Record every value the total progress bar takes.
    await page.evaluate(`{
      const seen = (globalThis.progressSeen = []);
      new MutationObserver(() => {
        const bar = document.getElementById('total-progress');
        if (bar && seen.at(-1) !== bar.value) seen.push(bar.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    }`);
    // Paths, not buffers: the browser reads the files itself instead of receiving 20 MiB over the protocol.
    await page.getByLabel('Upload files').setInputFiles(uploadPaths);
    await page.getByText('big.bin: done').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator('li.upload.done').count()).toBe(3);
    const seen = await page.evaluate(() => (globalThis as unknown as { progressSeen: number[] }).progressSeen);
    const total = big.length + 'hello, mesh\n'.length + '# Notes\n'.length;
    expect(seen.at(-1)).toBe(total);
    expect(
      seen.some((v) => v > 0 && v < total),
      `progress values ${seen.join(', ')}`,
    ).toBe(true);
    await page.getByRole('cell', { name: 'big.bin', exact: true }).waitFor();
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'big.bin' }).textContent()).toContain('20.0 MiB');
    await checkPage(page, '3-browse-uploaded');
  });

  it('downloads the 20 MiB file with the same sha256', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'big.bin' }).click()]);
    const saved = join(mkdtempSync(join(tmpdir(), 'meshwork-download-')), 'big.bin');
    await download.saveAs(saved);
    expect(sha256(readFileSync(saved))).toBe(sha256(big));
  });

  it('resumes an upload interrupted by a reload, sending only the blocks that were missing', async () => {
    const blockPuts = (): { done: number } => {
      const counter = { done: 0 };
      page.on('response', (r) => {
        if (r.request().method() === 'PUT' && r.url().includes('/v1/blocks/') && r.status() === 201) counter.done++;
      });
      return counter;
    };
    // Uploads slowed to 4 MiB/s, so that the reload comes in the middle of the 20 MiB.
    const cdp = await alice.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * MiB });
    const before = blockPuts();
    await page.getByLabel('Upload files').setInputFiles(resumePath);
    await expect.poll(() => before.done, { timeout: 30_000 }).toBeGreaterThan(0);
    const sentBeforeReload = before.done;
    await page.reload();
    page.removeAllListeners('response');
    await page.getByText('An upload was interrupted: again.bin').waitFor();
    expect(sentBeforeReload).toBeLessThan(5);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const after = blockPuts();
    await page.getByLabel('Upload files').setInputFiles(resumePath);
    await page.getByText('again.bin: done').waitFor({ timeout: 60_000 });
    // No block is sent twice: those answered before the reload are not sent again (and PUTs that
    // were still in flight during the reload may have landed too, leaving nothing to send).
    expect(after.done).toBeLessThanOrEqual(5 - sentBeforeReload);
    console.log(`Resumed upload: ${sentBeforeReload} of 5 blocks answered before the reload, ${after.done} sent after it`);
    page.removeAllListeners('response');
    await cdp.detach();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'again.bin' }).click()]);
    const saved = join(mkdtempSync(join(tmpdir(), 'meshwork-download-')), 'again.bin');
    await download.saveAs(saved);
    expect(sha256(readFileSync(saved))).toBe(sha256(readFileSync(resumePath)));
  });

  it('shares the folder with a reader, who sees it and cannot delete', async () => {
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByLabel('Share with user id').fill(people.bob.id);
    await page.getByLabel('Role').selectOption('reader');
    await page.getByRole('button', { name: 'Share' }).click();
    await page.getByText(`${people.bob.id}: reader`).waitFor();
    await checkPage(page, '4-browse-shared');

    const bobContext = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const bob = await signIn(bobContext, people.bob);
    await checkPage(bob, '2-objects-phone');
    const row = bob.getByRole('listitem').filter({ hasText: 'Projects' });
    expect(await row.textContent()).toContain('reader');
    await bob.getByRole('link', { name: 'Projects' }).click();
    await bob.getByText('Your role: reader').waitFor();
    await bob.getByRole('link', { name: 'docs/' }).click();
    await bob.getByRole('link', { name: 'big.bin' }).waitFor();
    expect(await bob.getByRole('button', { name: /^Delete/ }).count()).toBe(0);
    // Asked all the same, with the session's CSRF token, the mesh refuses.
    const refused = await bob.evaluate(
      async (objectId) => {
        const session = (await (await fetch('/v1/me/session')).json()) as { csrfToken: string };
        const entry = (await (await fetch(`/v1/objects/${objectId}/entries/docs/hello.txt`)).json()) as { version: string };
        const res = await fetch(`/v1/objects/${objectId}/entries/docs/hello.txt`, {
          method: 'DELETE',
          headers: { 'x-csrf-token': session.csrfToken, 'if-match': `"${entry.version}"` },
        });
        return res.status;
      },
      decodeURIComponent(/#\/o\/([^/]+)/.exec(bob.url())![1]!),
    );
    expect(refused).toBe(403);
    await bobContext.close();
  });

  it('lists devices', async () => {
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('cell', { name: 'alice-laptop', exact: true }).waitFor();
    await checkPage(page, '5-devices');
  });

  it('browses an online device through its relay, downloads from it, and says when it is offline', async () => {
    // A real `meshwork sync` of alice's, through the gateway: it announces its presence and keeps its relay.
    const home = await makeAgentHome('alice-nas');
    await login(home, gateway.url, people.alice.token);
    const objectId = await createObject(home, 'Films');
    const folder = join(home.dir, 'Films');
    const film = randomBytes(3 * MiB);
    mkdirSync(join(folder, 'summer'), { recursive: true });
    writeFileSync(join(folder, 'summer', 'film.bin'), film);
    const agent = await AgentProcess.start(home, folder, objectId);
    try {
      const account = new MeshworkClient({ baseUrl: gateway.url, token: people.alice.token, retry: { maxAttempts: 1 } });
      const nasId = (await account.listDevices()).find((d) => d.name === 'alice-nas')!.id;
      await expect
        .poll(
          async () => agent.exitStatus !== undefined || (await account.raw('GET', `/v1/devices/${nasId}/remote/files/`)).status === 200,
          { timeout: 30_000 },
        )
        .toBe(true);
      expect(agent.exitStatus, agent.tail()).toBeUndefined();
      await page.getByRole('link', { name: 'Devices' }).click();
      // Online once its presence is announced: the page is loaded again until it shows.
      await expect
        .poll(
          async () => {
            await page.reload();
            return page.getByRole('link', { name: 'Browse alice-nas' }).isVisible();
          },
          { timeout: 30_000 },
        )
        .toBe(true);
      await page.getByRole('link', { name: 'Browse alice-nas' }).click();
      await page.getByRole('heading', { name: 'On alice-nas' }).waitFor();
      await page.getByRole('link', { name: 'Films' }).click();
      await page.getByRole('link', { name: 'summer/' }).click();
      await page.getByRole('link', { name: 'film.bin' }).waitFor();
      await checkPage(page, '5-device');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'film.bin' }).click()]);
      const saved = join(mkdtempSync(join(tmpdir(), 'meshwork-download-')), 'film.bin');
      await download.saveAs(saved);
      expect(sha256(readFileSync(saved))).toBe(sha256(film));
    } finally {
      await agent.stop();
    }
    await page.reload();
    await page.getByRole('alert').getByText('This device is offline').waitFor();
  });

  it('changes the password on the account page, asking for the current one', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { name: 'Change password' }).waitFor();
    await checkPage(page, '6-account');
    await page.getByLabel('Current password').fill('not the current one');
    await page.getByLabel('New password (at least 10 characters)').fill('alice changed it');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').getByText('The current password is wrong.').waitFor();
    await page.getByLabel('Current password').fill(password);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('status').getByText('Password changed.').waitFor();
    // This session goes on; the new password signs in, the old one no longer does.
    expect((await page.request.get(`${gateway.url}/v1/me`)).status()).toBe(200);
    const old = await fetch(`${gateway.url}/v1/users/${people.alice.id}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password }),
    });
    expect(old.status).toBe(401);
    // A success clears the address's count of wrong passwords (the lock-out test below counts from zero).
    const renewed = await fetch(`${gateway.url}/v1/users/${people.alice.id}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'alice changed it' }),
    });
    expect(renewed.status).toBe(201);
  });

  it('refuses a form posted from another site', async () => {
    const objectsBefore = (await alice.request.get(`${gateway.url}/v1/objects`).then((r) => r.json())) as { objects: unknown[] };
    const evilPage = await alice.newPage();
    await evilPage.goto(`http://localhost:${evilPort}/`);
    const [answer] = await Promise.all([
      evilPage.waitForResponse((r) => r.url().endsWith('/v1/objects')),
      evilPage.getByRole('button', { name: 'go' }).click(),
    ]);
    expect(answer.status()).toBeGreaterThanOrEqual(400);
    expect(answer.status()).toBeLessThan(500);
    const objectsAfter = (await alice.request.get(`${gateway.url}/v1/objects`).then((r) => r.json())) as { objects: unknown[] };
    expect(objectsAfter.objects.length).toBe(objectsBefore.objects.length);
    await evilPage.close();
  });

  it('deletes a file and signs out', async () => {
    await page.getByRole('link', { name: 'Shared folders' }).first().click();
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('link', { name: 'docs/' }).click();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete hello.txt' }).click();
    await expect.poll(() => page.getByRole('link', { name: 'hello.txt' }).count()).toBe(0);
    const cookie = (await alice.cookies()).find((c) => c.name === 'mw_session')!;
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in to Meshwork' }).waitFor();
    expect((await alice.cookies()).find((c) => c.name === 'mw_session')).toBeUndefined();
    // The old cookie no longer works.
    const me = await fetch(`${gateway.url}/v1/me`, { headers: { cookie: `mw_session=${cookie.value}` } });
    expect(me.status).toBe(401);
  });

  it('locks sign-in after ten wrong passwords (429 with Retry-After)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await page.evaluate(
        async ({ id, attempt }) =>
          (
            await fetch(`/v1/users/${id}/sessions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ password: `wrong ${attempt}` }),
            })
          ).status,
        { id: people.bob.id, attempt: i },
      );
      statuses.push(res);
    }
    expect(statuses).toEqual(Array(10).fill(401));
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('/sessions')),
      (async () => {
        await page.getByLabel('User id').fill(people.bob.id);
        await page.getByLabel('Password').fill(password);
        await page.getByRole('button', { name: 'Sign in' }).click();
      })(),
    ]);
    expect(answer.status()).toBe(429);
    expect(Number(await answer.headerValue('retry-after'))).toBeGreaterThan(0);
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/try again in \d+ s/);
    await page.screenshot({ path: join(artefacts, '7-sign-in-locked.png') });
  });
});
