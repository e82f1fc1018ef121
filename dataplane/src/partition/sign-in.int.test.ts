// Sign-in for people (ADR 42), on two replicas of one partition (two processes serving the same
// slots against one etcd and MinIO): passwords set by the administrator and by the user; the
// session cookie's flags; a session acts for its user but needs its CSRF token for writes and
// is refused cross-site; sign-out through one replica is honoured by the other, which had the
// session cached; sign out everywhere and a password change end sessions; ten wrong passwords
// lock the account, and ten from one address lock the address (429 with Retry-After).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { credentialCacheMillis } from './auth.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let first: RunningPartition;
let second: RunningPartition;
let admin: MeshworkClient;
let nextAddress = 1;

/** A client address of its own (the partition counts failures per X-Forwarded-For's last hop). */
const freshAddress = (): string => `198.18.0.${nextAddress++}`;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-sign-in' }), startMinio({ bucket: 'sign-in' })]);
  const stores = { etcdEndpoint: etcd.endpoint, minio };
  first = await startPartition(stores, { partition: 'sign-in', env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'sign-in-0' } });
  second = await startPartition(stores, {
    partition: 'sign-in',
    adminToken: first.adminToken,
    env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'sign-in-1' },
  });
  admin = new MeshworkClient({ baseUrl: first.url, token: first.adminToken, retry: { maxAttempts: 1 } });
}, 120_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

interface Call {
  method?: string;
  body?: unknown;
  cookie?: string;
  headers?: Record<string, string>;
  via?: RunningPartition;
}

/** A JSON answer, as far as these tests read it. */
interface Answer {
  csrfToken?: string;
  endedSessions?: number;
  error?: { code: string; field?: string };
  [key: string]: unknown;
}

async function call(path: string, options: Call = {}): Promise<{ status: number; headers: Headers; body: Answer }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${(options.via ?? first).url}${path}`, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text === '' ? {} : JSON.parse(text)) as Answer };
}

/** A user with a password set by the administrator. */
async function userWithPassword(
  name: string,
  password = 'correct horse battery',
): Promise<{ id: string; token: string; password: string }> {
  const user = await admin.createUser(name);
  const set = await call(`/v1/users/${user.id}/password`, {
    method: 'PUT',
    body: { password },
    headers: { authorization: `Bearer ${first.adminToken}` },
  });
  expect(set.status).toBe(204);
  return { id: user.id, token: user.token, password };
}

/** Signs in and answers the cookie header to send, the CSRF token and the raw Set-Cookie. */
async function signIn(
  userId: string,
  password: string,
  extra: Record<string, string> = {},
): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await call(`/v1/users/${userId}/sessions`, {
    method: 'POST',
    body: { password },
    headers: { 'x-forwarded-for': freshAddress(), ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, csrf: res.body.csrfToken ?? '', setCookie };
}

describe('passwords', () => {
  it('are set by the administrator or the user, never by another user or a device, and must be long enough', async () => {
    const alice = await userWithPassword('alice-pw');
    const bob = await admin.createUser('bob-pw');
    const asAlice = { authorization: `Bearer ${alice.token}` };
    expect(
      (await call(`/v1/users/${alice.id}/password`, { method: 'PUT', body: { password: 'short' }, headers: asAlice })).body.error,
    ).toMatchObject({ code: 'invalid_request', field: 'body.password' });
    expect(
      (await call(`/v1/users/${alice.id}/password`, { method: 'PUT', body: { password: 'a new long password' }, headers: asAlice })).status,
    ).toBe(204);
    expect(
      (await call(`/v1/users/${bob.id}/password`, { method: 'PUT', body: { password: 'a new long password' }, headers: asAlice })).status,
    ).toBe(403);
    const device = await admin.as(alice.token).registerDevice('laptop');
    const asDevice = { authorization: `Bearer ${device.token}` };
    expect(
      (await call(`/v1/users/${alice.id}/password`, { method: 'PUT', body: { password: 'a device password' }, headers: asDevice })).status,
    ).toBe(403);
    expect((await call(`/v1/users/${alice.id}/password`, { method: 'PUT', body: { password: 'no token at all' } })).status).toBe(401);
    // The old password no longer signs in, the new one does.
    expect((await call(`/v1/users/${alice.id}/sessions`, { method: 'POST', body: { password: alice.password } })).status).toBe(401);
    await signIn(alice.id, 'a new long password');
  });
});

describe('a session', () => {
  it('is a cookie with HttpOnly, SameSite=Lax and Path=/, and Secure when the client came over TLS', async () => {
    const carol = await userWithPassword('carol');
    const plain = await signIn(carol.id, carol.password);
    expect(plain.setCookie).toMatch(/^mw_session=mws\.[\w-]+\.[\w-]{43}; /);
    expect(plain.setCookie).toContain('HttpOnly');
    expect(plain.setCookie).toContain('SameSite=Lax');
    expect(plain.setCookie).toContain('Path=/');
    expect(plain.setCookie).not.toContain('Secure');
    const tls = await signIn(carol.id, carol.password, { 'x-forwarded-proto': 'https' });
    expect(tls.setCookie).toContain('; Secure');
  });

  it('acts for its user, needs its CSRF token to write and is refused cross-site', async () => {
    const dave = await userWithPassword('dave');
    const { cookie, csrf } = await signIn(dave.id, dave.password);
    const me = await call('/v1/me', { cookie });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: dave.id, deviceId: null });
    expect((await call('/v1/me/session', { cookie })).body).toMatchObject({ userId: dave.id, csrfToken: csrf });
    // A write without the token, or with another, is refused; with it, it is done.
    expect((await call('/v1/objects', { method: 'POST', body: { name: 'docs' }, cookie })).status).toBe(403);
    const wrong = await call('/v1/objects', {
      method: 'POST',
      body: { name: 'docs' },
      cookie,
      headers: { 'x-csrf-token': csrf.slice(1) + 'A' },
    });
    expect(wrong.status).toBe(403);
    const made = await call('/v1/objects', { method: 'POST', body: { name: 'docs' }, cookie, headers: { 'x-csrf-token': csrf } });
    expect(made.status).toBe(201);
    // A cross-site request is refused even with the token, and so is one from another origin.
    const crossSite = { 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' };
    expect((await call('/v1/objects', { method: 'POST', body: { name: 'x' }, cookie, headers: crossSite })).status).toBe(403);
    expect((await call('/v1/objects', { cookie, headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' } })).status).toBe(403);
    const otherOrigin = { 'x-csrf-token': csrf, origin: 'https://evil.example', 'x-forwarded-host': 'mesh.example' };
    expect((await call('/v1/objects', { method: 'POST', body: { name: 'x' }, cookie, headers: otherOrigin })).status).toBe(403);
    const sameOrigin = { 'x-csrf-token': csrf, origin: 'https://mesh.example', 'x-forwarded-host': 'mesh.example' };
    expect((await call('/v1/objects', { method: 'POST', body: { name: 'y' }, cookie, headers: sameOrigin })).status).toBe(201);
    // It is not an account token: it mints no device tokens.
    expect((await call('/v1/devices', { method: 'POST', body: { name: 'x' }, cookie, headers: { 'x-csrf-token': csrf } })).status).toBe(
      403,
    );
    // A session token is a cookie only, never a bearer token.
    const token = cookie.slice('mw_session='.length);
    expect((await call('/v1/me', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });

  it('ends on sign-out, on every replica at once (the credential watch), and the cookie is cleared', async () => {
    const erin = await userWithPassword('erin');
    const { cookie, csrf } = await signIn(erin.id, erin.password);
    // The second replica caches the session.
    expect((await call('/v1/me', { cookie, via: second })).status).toBe(200);
    expect((await call('/v1/me/session', { method: 'DELETE', cookie })).status).toBe(403);
    const out = await call('/v1/me/session', { method: 'DELETE', cookie, headers: { 'x-csrf-token': csrf } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^mw_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax/);
    const start = performance.now();
    await waitFor(async () => (await call('/v1/me', { cookie, via: second })).status === 401, {
      description: 'the second replica to refuse the signed-out session',
      timeoutMs: 3 * credentialCacheMillis,
      intervalMs: 5,
    });
    expect(performance.now() - start).toBeLessThan(credentialCacheMillis / 2);
    expect((await call('/v1/me', { cookie })).status).toBe(401);
  });

  it('ends everywhere at once, and on a password change from another session', async () => {
    const frank = await userWithPassword('frank');
    const [a, b, c] = [
      await signIn(frank.id, frank.password),
      await signIn(frank.id, frank.password),
      await signIn(frank.id, frank.password),
    ];
    // A password change from session a needs the current password and ends b and c.
    const change = (current: string): Promise<{ status: number }> =>
      call(`/v1/users/${frank.id}/password`, {
        method: 'PUT',
        body: { password: 'frank changed it', currentPassword: current },
        cookie: a.cookie,
        headers: { 'x-csrf-token': a.csrf },
      });
    expect((await change('not the password')).status).toBe(403);
    expect((await change(frank.password)).status).toBe(204);
    expect((await call('/v1/me', { cookie: a.cookie })).status).toBe(200);
    await waitFor(async () => (await call('/v1/me', { cookie: b.cookie, via: second })).status === 401, {
      description: 'session b to end',
      timeoutMs: 3 * credentialCacheMillis,
    });
    expect((await call('/v1/me', { cookie: c.cookie })).status).toBe(401);
    // Sign out everywhere from the account token ends a too.
    const d = await signIn(frank.id, 'frank changed it');
    const everywhere = await call('/v1/me/sessions', { method: 'DELETE', headers: { authorization: `Bearer ${frank.token}` } });
    expect(everywhere.body).toEqual({ endedSessions: 2 });
    for (const s of [a, d]) expect((await call('/v1/me', { cookie: s.cookie })).status).toBe(401);
  });
});

describe('sign-in', () => {
  it('locks an account after ten wrong passwords (429 with Retry-After), even for the right one', async () => {
    const gina = await userWithPassword('gina');
    for (let i = 0; i < 10; i++) {
      const wrong = await call(`/v1/users/${gina.id}/sessions`, {
        method: 'POST',
        body: { password: `wrong password ${i}` },
        headers: { 'x-forwarded-for': freshAddress() },
        via: i % 2 === 0 ? first : second,
      });
      expect(wrong.status).toBe(401);
    }
    const locked = await call(`/v1/users/${gina.id}/sessions`, {
      method: 'POST',
      body: { password: gina.password },
      headers: { 'x-forwarded-for': freshAddress() },
      via: second,
    });
    expect(locked.status).toBe(429);
    expect(locked.body.error?.code).toBe('sign_in_locked');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
  });

  it('locks an address after ten wrong passwords from it, whichever accounts they name', async () => {
    const hank = await userWithPassword('hank');
    const address = freshAddress();
    for (let i = 0; i < 10; i++) {
      const userId = i % 2 === 0 ? hank.id : (await admin.createUser(`other-${i}`)).id;
      const wrong = await call(`/v1/users/${userId}/sessions`, {
        method: 'POST',
        body: { password: 'guessing away' },
        headers: { 'x-forwarded-for': address },
      });
      expect(wrong.status).toBe(401);
    }
    const locked = await call(`/v1/users/${hank.id}/sessions`, {
      method: 'POST',
      body: { password: hank.password },
      headers: { 'x-forwarded-for': address },
    });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // The account itself is not locked (five failures): from another address it signs in.
    await signIn(hank.id, hank.password);
  });

  it('refuses a sign-in posted from another site', async () => {
    const ivy = await userWithPassword('ivy');
    const res = await call(`/v1/users/${ivy.id}/sessions`, {
      method: 'POST',
      body: { password: ivy.password },
      headers: { 'sec-fetch-site': 'cross-site', 'x-forwarded-for': freshAddress() },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
