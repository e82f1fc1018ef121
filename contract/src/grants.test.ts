// Grants as both sides read them (ADR 51): a grant the service signs verifies for its audience
// and scope, and every other one is refused with the status a peer answers.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeGrant,
  GrantError,
  grantBlockLists,
  maxBlocksPerGrant,
  grantKeysOf,
  privateKeyFromPkcs8,
  publicKeyFromRaw,
  rawPublicKeyOf,
  signGrant,
  verifyGrant,
  type GrantRequest,
  type GrantScope,
} from './grants.ts';

const service = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const key = { kid: 'k1', privateKey: service.privateKey };
const keys = new Map([['k1', service.publicKey]]);
const sha = (c: string): string => c.repeat(64);
const blocks: GrantScope = { kind: 'blocks', objectId: 'obj1', blocks: [sha('a'), sha('b')] };
const remote: GrantScope = { kind: 'remote', objects: { obj1: 'reader' } };
const now = Date.UTC(2026, 0, 1);

function grant(scope: GrantScope, fields: { aud?: string; signer?: typeof key; at?: number } = {}): string {
  return signGrant(fields.signer ?? key, { aud: fields.aud ?? 'devB', sub: 'devA', scope }, fields.at ?? now);
}

describe('a grant', () => {
  it('carries its payload as the contract writes it', () => {
    const payload = decodeGrant(grant(blocks));
    expect(payload).toEqual({ v: 1, kid: 'k1', aud: 'devB', sub: 'devA', iat: now / 1000, exp: now / 1000 + 300, scope: blocks });
  });

  it.each<[string, GrantScope, GrantRequest]>([
    ['a listed block', blocks, { kind: 'blocks', sha256: sha('b') }],
    ['an object of a remote grant', remote, { kind: 'remote', objectId: 'obj1' }],
  ])('verifies for %s', (_, scope, request) => {
    expect(verifyGrant(grant(scope), { keys, audience: 'devB', request, now }).sub).toBe('devA');
  });

  it('verifies within the clock skew after it expired, and not beyond', () => {
    const token = grant(blocks);
    expect(() => verifyGrant(token, { keys, audience: 'devB', now: now + 329_000 })).not.toThrow();
    expect(() => verifyGrant(token, { keys, audience: 'devB', now: now + 331_000 })).toThrow(/expired/);
  });

  const forged = ((): string => {
    const [, signature] = grant(blocks).split('.');
    const head = Buffer.from(JSON.stringify({ ...decodeGrant(grant(blocks)), sub: 'devEvil' })).toString('base64url');
    return `${head}.${signature}`;
  })();

  it.each<[string, string, GrantRequest, 401 | 403, RegExp]>([
    ['a forged payload', forged, { kind: 'blocks', sha256: sha('a') }, 401, /does not verify/],
    [
      'a grant signed by another key under a known kid',
      grant(blocks, { signer: { kid: 'k1', privateKey: other.privateKey } }),
      { kind: 'blocks', sha256: sha('a') },
      401,
      /does not verify/,
    ],
    [
      'an unknown kid',
      grant(blocks, { signer: { kid: 'k9', privateKey: service.privateKey } }),
      { kind: 'blocks', sha256: sha('a') },
      401,
      /unknown key/,
    ],
    ['an expired grant', grant(blocks, { at: now - 400_000 }), { kind: 'blocks', sha256: sha('a') }, 401, /expired/],
    ['a grant from the future', grant(blocks, { at: now + 60_000 }), { kind: 'blocks', sha256: sha('a') }, 401, /future/],
    ['another audience', grant(blocks, { aud: 'devC' }), { kind: 'blocks', sha256: sha('a') }, 403, /another device/],
    ['a block out of scope', grant(blocks), { kind: 'blocks', sha256: sha('c') }, 403, /does not cover/],
    ['an object out of scope', grant(remote), { kind: 'remote', objectId: 'obj2' }, 403, /does not cover/],
    ['a remote grant used for a block', grant(remote), { kind: 'blocks', sha256: sha('a') }, 403, /does not cover/],
    ['garbage', 'not-a-grant', { kind: 'blocks', sha256: sha('a') }, 401, /not a grant/],
    [
      'a payload that is not JSON',
      `${Buffer.from('{').toString('base64url')}.AAAA`,
      { kind: 'blocks', sha256: sha('a') },
      401,
      /not a grant/,
    ],
  ])('is refused for %s', (_, token, request, status, message) => {
    let caught: unknown;
    try {
      verifyGrant(token, { keys, audience: 'devB', request, now });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GrantError);
    expect((caught as GrantError).status).toBe(status);
    expect((caught as GrantError).message).toMatch(message);
    expect((caught as GrantError).toJSON().error.code).toBe(status === 401 ? 'unauthenticated' : 'forbidden');
  });
});

describe('grant keys', () => {
  it('round-trip through the raw form the keys route lists and the PKCS#8 form the service stores', () => {
    const raw = rawPublicKeyOf(service.privateKey);
    expect(Buffer.from(raw, 'base64url')).toHaveLength(32);
    expect(publicKeyFromRaw(raw).equals(service.publicKey)).toBe(true);
    const der = service.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url');
    const token = signGrant({ kid: 'k1', privateKey: privateKeyFromPkcs8(der) }, { aud: 'devB', sub: 'devA', scope: blocks }, now);
    const listed = grantKeysOf({
      keys: [
        { kid: 'k1', alg: 'Ed25519', publicKey: raw },
        { kid: 'bad', alg: 'Ed25519', publicKey: 'AAAA' },
      ],
    });
    expect([...listed.keys()]).toEqual(['k1']);
    expect(verifyGrant(token, { keys: listed, audience: 'devB', now }).kid).toBe('k1');
  });
});

describe('grantBlockLists (ADR 66)', () => {
  const sha = (i: number): string => i.toString(16).padStart(64, '0');
  it.each([
    [0, []],
    [1, [1]],
    [128, [128]],
    [129, [128, 1]],
    [300, [128, 128, 44]],
  ])('splits %d distinct blocks into lists of %j', (n, sizes) => {
    const blocks = Array.from({ length: n }, (_, i) => sha(i));
    const lists = grantBlockLists(blocks);
    expect(lists.map((l) => l.length)).toEqual(sizes);
    expect(lists.flat()).toEqual(blocks);
  });

  it('names a repeated block once, where it first appears', () => {
    expect(grantBlockLists([sha(1), sha(2), sha(1), sha(3)])).toEqual([[sha(1), sha(2), sha(3)]]);
  });

  it('keeps a grant of the most blocks under 12 KiB', () => {
    const keys = generateKeyPairSync('ed25519');
    const blocks = Array.from({ length: maxBlocksPerGrant }, (_, i) => sha(i));
    const token = signGrant(
      { kid: 'k1', privateKey: keys.privateKey },
      { aud: 'd'.repeat(22), sub: 'd'.repeat(22), scope: { kind: 'blocks', objectId: 'o'.repeat(22), blocks } },
    );
    expect(token.length).toBeLessThan(12 * 1024);
  });
});
