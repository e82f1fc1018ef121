// Tokens and the authenticator's cache: minting and parsing, and the cache's promise that a
// revocation (a credential changed or deleted, as the credential watch reports it) is honoured
// at once, that a lookup racing with a revocation does not cache what it read, and that the
// time to live bounds a revocation the watch never reported. The credentials are a map in
// memory here; the integration tests run the same against etcd and two partition processes.
import { ApiError } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import type { CredentialRecord, Versioned } from '../stores/metadata-store.ts';
import { Authenticator, hashSecret, mintToken, parseToken, presentedSecretHash } from './auth.ts';

describe('tokens', () => {
  it.each(['user', 'device'] as const)('mints a %s token that parses back and matches its stored hash', (kind) => {
    const { token, tokenHash } = mintToken(kind, 'uAbC_-1');
    const parsed = parseToken(token);
    expect(parsed).toMatchObject({ kind, id: 'uAbC_-1' });
    expect(hashSecret(parsed!.secret)).toBe(tokenHash);
    expect(token).not.toContain(tokenHash);
  });

  it.each([
    '',
    'mwu.abc',
    'mwx.abc.' + 'a'.repeat(43),
    'mwu.a.b.' + 'a'.repeat(43),
    'mwd.abc.' + 'a'.repeat(42),
    'Bearer mwu.abc.' + 'a'.repeat(43),
  ])('refuses %j', (token) => {
    expect(parseToken(token)).toBeUndefined();
  });

  it.each<[string | undefined, boolean]>([
    [undefined, false],
    ['Basic abc', false],
    ['Bearer admin-secret', false],
    [`Bearer ${mintToken('user', 'uA').token}`, true],
  ])('finds the stored form of the token in %j: %s', (header, found) => {
    expect(presentedSecretHash(header) !== undefined).toBe(found);
  });
});

/** Credentials in memory, counting reads, with a hook to run something in the middle of a read. */
function credentialStore() {
  const records = new Map<string, Versioned<CredentialRecord>>();
  let version = 1;
  const store = {
    reads: 0,
    duringRead: undefined as (() => void) | undefined,
    set(id: string, record: CredentialRecord): void {
      records.set(id, { value: record, version: version++ });
    },
    delete(id: string): void {
      records.delete(id);
    },
    getCredential(id: string): Promise<Versioned<CredentialRecord> | undefined> {
      store.reads++;
      const found = records.get(id);
      store.duringRead?.();
      return Promise.resolve(found);
    },
  };
  return store;
}

async function statusOf(auth: Authenticator, token: string): Promise<number | string> {
  try {
    return (await auth.authenticate(`Bearer ${token}`)).kind;
  } catch (err) {
    if (err instanceof ApiError) return err.status;
    throw err;
  }
}

describe('the authenticator', () => {
  const admin = 'the-administrator-token';

  function setup() {
    let now = 1_000_000;
    const store = credentialStore();
    const auth = new Authenticator(admin, store, { cacheMillis: 5000, now: () => now });
    const device = mintToken('device', 'dLaptop');
    const account = mintToken('user', 'uAlice');
    store.set('dLaptop', { kind: 'device', userId: 'uAlice', tokenHash: device.tokenHash });
    store.set('uAlice', { kind: 'user', userId: 'uAlice', tokenHash: account.tokenHash });
    return { store, auth, device, account, advance: (ms: number) => (now += ms) };
  }

  it('answers the principal of each kind and caches it', async () => {
    const { store, auth, device, account } = setup();
    expect(await auth.authenticate(`Bearer ${admin}`)).toEqual({ kind: 'admin' });
    expect(await auth.authenticate(`Bearer ${device.token}`)).toEqual({ kind: 'device', userId: 'uAlice', deviceId: 'dLaptop' });
    expect(await auth.authenticate(`Bearer ${account.token}`)).toEqual({ kind: 'user', userId: 'uAlice' });
    await auth.authenticate(`Bearer ${device.token}`);
    expect(store.reads).toBe(2);
  });

  it.each<[string, (t: ReturnType<typeof setup>) => string]>([
    ['no such id', () => mintToken('device', 'dNobody').token],
    ['a wrong secret for a known id', () => mintToken('device', 'dLaptop').token],
    ['an account token naming a device id', (t) => t.device.token.replace(/^mwd/, 'mwu')],
    ['not a token of ours', () => 'mwd.dLaptop.short'],
  ])('refuses %s with 401', async (_what, tokenOf) => {
    const t = setup();
    expect(await statusOf(t.auth, tokenOf(t))).toBe(401);
  });

  it('refuses a revoked token at once when the watch reports the revocation', async () => {
    const { store, auth, device } = setup();
    expect(await statusOf(auth, device.token)).toBe('device');
    store.delete('dLaptop');
    // Cached: without the watch's report it would still pass.
    expect(await statusOf(auth, device.token)).toBe('device');
    auth.revoke('dLaptop');
    expect(await statusOf(auth, device.token)).toBe(401);
  });

  it('refuses a revoked token once the time to live has passed, even when no watch reported it', async () => {
    const { store, auth, device, advance } = setup();
    expect(await statusOf(auth, device.token)).toBe('device');
    store.delete('dLaptop');
    advance(4999);
    expect(await statusOf(auth, device.token)).toBe('device');
    advance(2);
    expect(await statusOf(auth, device.token)).toBe(401);
  });

  it('does not cache what a lookup read while a revocation arrived', async () => {
    const { store, auth, device } = setup();
    // The read sees the old credential; the revocation is reported before the read answers.
    store.duringRead = () => {
      store.delete('dLaptop');
      auth.revoke('dLaptop');
      store.duringRead = undefined;
    };
    expect(await statusOf(auth, device.token)).toBe('device');
    expect(await statusOf(auth, device.token)).toBe(401);
  });

  it('still caches a lookup that overlapped the revocation of another id (a credential written elsewhere in the mesh)', async () => {
    const { store, auth, device } = setup();
    store.duringRead = () => {
      auth.revoke('dSomeoneElse');
      store.duringRead = undefined;
    };
    await auth.authenticate(`Bearer ${device.token}`);
    await auth.authenticate(`Bearer ${device.token}`);
    expect(store.reads).toBe(1);
  });

  it('does not let a request that arrives after a revocation join a lookup started before it', async () => {
    const { store, device } = setup();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowStore = {
      getCredential: async (id: string) => {
        const found = await store.getCredential(id);
        await gate;
        return found;
      },
    };
    const slow = new Authenticator(admin, slowStore);
    const before = slow.authenticate(`Bearer ${device.token}`);
    store.delete('dLaptop');
    slow.revoke('dLaptop');
    const after = statusOf(slow, device.token);
    release();
    // The first request was admitted with the credential it read; the second reads again.
    expect((await before).kind).toBe('device');
    expect(await after).toBe(401);
  });

  it('accepts the new account token and refuses the old one after a rotation', async () => {
    const { store, auth, account } = setup();
    expect(await statusOf(auth, account.token)).toBe('user');
    const rotated = mintToken('user', 'uAlice');
    store.set('uAlice', { kind: 'user', userId: 'uAlice', tokenHash: rotated.tokenHash });
    // Before the watch reports it, the new token is already read afresh (the cache is by secret).
    expect(await statusOf(auth, rotated.token)).toBe('user');
    auth.revoke('uAlice');
    expect(await statusOf(auth, account.token)).toBe(401);
    expect(await statusOf(auth, rotated.token)).toBe('user');
  });

  it('drops every cached principal when revocations may have been missed', async () => {
    const { store, auth, device, account } = setup();
    await auth.authenticate(`Bearer ${device.token}`);
    await auth.authenticate(`Bearer ${account.token}`);
    store.delete('dLaptop');
    store.delete('uAlice');
    auth.revokeAll();
    expect(await statusOf(auth, device.token)).toBe(401);
    expect(await statusOf(auth, account.token)).toBe(401);
  });
});
