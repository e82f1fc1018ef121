// Bearer tokens: the administrator's token (from a file or Secret), account tokens that a
// user gets when created, and device tokens. Only a sha256 of a token's secret is stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MetadataStore } from '../stores/metadata-store.ts';
import { ApiError } from '@meshwork/contract';

/** Who is calling. */
export type Principal = { kind: 'admin' } | { kind: 'user'; userId: string } | { kind: 'device'; userId: string; deviceId: string };

/** The parts of a user ("mwu") or device ("mwd") token. */
export interface ParsedToken {
  kind: 'user' | 'device';
  id: string;
  secret: string;
}

/** sha256 of a token secret, as stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new token for a user or device, and the hash to store for it. */
export function mintToken(kind: 'user' | 'device', id: string): { token: string; tokenHash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${kind === 'user' ? 'mwu' : 'mwd'}.${id}.${secret}`, tokenHash: hashSecret(secret) };
}

/** Splits a token into kind, id and secret; undefined if it is not one of ours. */
export function parseToken(token: string): ParsedToken | undefined {
  const match = /^(mwu|mwd)\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return undefined;
  return { kind: match[1] === 'mwu' ? 'user' : 'device', id: match[2]!, secret: match[3]! };
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

// Tokens cannot be revoked yet, so a short cache only delays nothing; it saves an etcd read per request.
const cacheMillis = 30_000;
const cacheLimit = 50_000;

/** Resolves Authorization headers to principals. */
export class Authenticator {
  readonly #adminHash: string;
  readonly #metadata: MetadataStore;
  readonly #cache = new Map<string, { principal: Principal; expires: number }>();
  // Lookups in flight, so that a burst of requests with one new token costs one etcd read.
  readonly #pending = new Map<string, Promise<Principal | undefined>>();

  constructor(adminToken: string, metadata: MetadataStore) {
    this.#adminHash = hashSecret(adminToken);
    this.#metadata = metadata;
  }

  /** The principal of an `Authorization: Bearer ...` header; 401 when missing or wrong. */
  async authenticate(header: string | undefined): Promise<Principal> {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new ApiError('unauthenticated', 'a bearer token is required', { headers: { 'WWW-Authenticate': 'Bearer' } });
    const token = match[1]!;
    const tokenHash = hashSecret(token);
    if (sameHash(tokenHash, this.#adminHash)) return { kind: 'admin' };
    const cached = this.#cache.get(tokenHash);
    if (cached && cached.expires > Date.now()) return cached.principal;
    let lookup = this.#pending.get(tokenHash);
    if (lookup === undefined) {
      lookup = this.#lookup(token).finally(() => this.#pending.delete(tokenHash));
      this.#pending.set(tokenHash, lookup);
    }
    const principal = await lookup;
    if (principal === undefined) {
      throw new ApiError('unauthenticated', 'the bearer token is not valid', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
    if (this.#cache.size >= cacheLimit) this.#cache.clear();
    this.#cache.set(tokenHash, { principal, expires: Date.now() + cacheMillis });
    return principal;
  }

  async #lookup(token: string): Promise<Principal | undefined> {
    const parsed = parseToken(token);
    if (parsed === undefined) return undefined;
    const secretHash = hashSecret(parsed.secret);
    if (parsed.kind === 'user') {
      const user = await this.#metadata.getUser(parsed.id);
      return user && sameHash(user.tokenHash, secretHash) ? { kind: 'user', userId: user.id } : undefined;
    }
    const device = await this.#metadata.getDevice(parsed.id);
    return device && sameHash(device.tokenHash, secretHash) ? { kind: 'device', userId: device.userId, deviceId: device.id } : undefined;
  }
}
