// Grant verification (ADR 54): every way a grant is refused, and the certificate the listener presents.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateDer, createPeerIdentity, loadOrCreatePeerIdentity, oid } from './certificate.ts';
import { publicKeyFromRaw } from '@meshwork/contract';
import { signGrant } from '../testing/grants.ts';
import { fetchedGrantKeys, grantsByBlock, staticGrantKeys, verifyGrant, type GrantPayload } from './grant.ts';

const service = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const keys = staticGrantKeys({ k1: service.publicKey });
const now = 1_800_000_000;
const payload: GrantPayload = {
  v: 1,
  kid: 'k1',
  aud: 'dServer',
  sub: 'dRequester',
  iat: now - 10,
  exp: now + 290,
  scope: { kind: 'blocks', objectId: 'o1', blocks: ['a'.repeat(64)] },
};

describe('verifyGrant', () => {
  it('accepts a grant signed by a service key for this device', async () => {
    await expect(verifyGrant(signGrant(payload, service.privateKey), keys, 'dServer', now)).resolves.toEqual(payload);
  });

  it.each([
    ['missing', undefined, 401],
    ['not a token', 'nonsense', 401],
    ['three parts', 'a.b.c', 401],
    ['not JSON', `${Buffer.from('{').toString('base64url')}.AAAA`, 401],
    ['forged (another key)', signGrant(payload, other.privateKey), 401],
    ['unknown kid', signGrant({ ...payload, kid: 'k9' }, service.privateKey), 401],
    ['expired beyond the skew', signGrant({ ...payload, exp: now - 31 }, service.privateKey), 401],
    ['issued in the future', signGrant({ ...payload, iat: now + 120 }, service.privateKey), 401],
    ['for another device', signGrant({ ...payload, aud: 'dOther' }, service.privateKey), 403],
    ['an unknown scope', signGrant({ ...payload, scope: { kind: 'all' } as never }, service.privateKey), 401],
  ])('refuses a grant %s', async (_, token, status) => {
    await expect(verifyGrant(token, keys, 'dServer', now)).rejects.toMatchObject({ status });
  });

  it('accepts an expiry within the clock skew', async () => {
    await expect(verifyGrant(signGrant({ ...payload, exp: now - 29 }, service.privateKey), keys, 'dServer', now)).resolves.toBeDefined();
  });

  it('refuses a payload altered after signing', async () => {
    const [, sig] = signGrant(payload, service.privateKey).split('.');
    const altered = Buffer.from(JSON.stringify({ ...payload, aud: 'dServer', sub: 'dThief' })).toString('base64url');
    await expect(verifyGrant(`${altered}.${sig}`, keys, 'dServer', now)).rejects.toMatchObject({ status: 401 });
  });

  it('reads the raw public keys /v1/grants/keys lists and refetches for an unknown kid', async () => {
    const raw = service.publicKey.export({ format: 'jwk' }).x!;
    const key = publicKeyFromRaw(raw);
    let fetched = 0;
    const fetchedKeys = fetchedGrantKeys(() => {
      fetched++;
      return Promise.resolve({ keys: [{ kid: 'k1', alg: 'Ed25519', publicKey: raw }] });
    });
    await expect(verifyGrant(signGrant(payload, service.privateKey), fetchedKeys, 'dServer', now)).resolves.toEqual(payload);
    await expect(verifyGrant(signGrant(payload, service.privateKey), fetchedKeys, 'dServer', now)).resolves.toEqual(payload);
    expect(fetched).toBe(1);
    expect(key.asymmetricKeyType).toBe('ed25519');
  });
});

describe('the peer certificate', () => {
  it('is a self-signed X.509 certificate whose fingerprint is the sha256 of its DER', () => {
    const identity = createPeerIdentity(new Date('2026-12-05T12:00:00Z'));
    const cert = new X509Certificate(identity.certPem);
    expect(cert.subject).toBe('CN=meshwork-device');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(identity.fingerprint);
    expect(certificateDer(identity.certPem).equals(cert.raw)).toBe(true);
    expect(new Date(cert.validTo).getUTCFullYear()).toBe(2126);
  });

  it.each([
    ['2.5.4.3', '0603550403'],
    ['1.3.101.112', '06032b6570'],
    ['1.2.840.113549', '06062a864886f70d'],
  ])('encodes the OID %s', (dotted, hex) => {
    expect(oid(dotted).toString('hex')).toBe(hex);
  });

  it('is made once in the state directory and read back from there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-identity-'));
    try {
      const first = await loadOrCreatePeerIdentity(join(dir, 'state'));
      expect(statSync(join(dir, 'state', 'peer-key.pem')).mode & 0o777).toBe(0o600);
      const again = await loadOrCreatePeerIdentity(join(dir, 'state'));
      expect(again).toEqual(first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('grantsByBlock', () => {
  it('maps every block to the first grant that names it, and skips what is not a blocks grant', () => {
    const g1 = signGrant(
      { ...payload, scope: { kind: 'blocks', objectId: 'o1', blocks: ['a'.repeat(64), 'b'.repeat(64)] } },
      service.privateKey,
    );
    const g2 = signGrant(
      { ...payload, scope: { kind: 'blocks', objectId: 'o1', blocks: ['b'.repeat(64), 'c'.repeat(64)] } },
      service.privateKey,
    );
    const remote = signGrant({ ...payload, scope: { kind: 'remote', objects: { o1: 'reader' } } }, service.privateKey);
    const byBlock = grantsByBlock([g1, g2, remote, 'garbage']);
    expect([...byBlock.entries()]).toEqual([
      ['a'.repeat(64), g1],
      ['b'.repeat(64), g1],
      ['c'.repeat(64), g2],
    ]);
  });
});
