// Bearer tokens: the administrator's token (from a file or Secret), account tokens that a
// user gets when created (and may rotate), and device tokens (revoked by deleting the device);
// and the session cookie of a person signed in with a password (ADR 42), a credential like the
// others that signing out deletes.
// Only a sha256 of a token's secret is stored, in the credential key of its user or device.
// Principals are cached for a few seconds to save an etcd read per request; a revocation
// reaches every process through one etcd watch over the credential keys, which drops the
// cached principal at once, and the cache's time to live bounds it if the watch is behind.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { credentialIdOf, credentialsPrefix } from '../stores/keys.ts';
import type { CredentialRecord, MetadataStore } from '../stores/metadata-store.ts';
import { ApiError, parseSessionToken, sessionTokenOf } from '@meshwork/contract';

/** Who is calling. */
export type Principal =
  | { kind: 'admin' }
  | { kind: 'user'; userId: string }
  | { kind: 'device'; userId: string; deviceId: string }
  | { kind: 'session'; userId: string; sessionId: string; csrfToken: string };

/** The parts of a user ("mwu") or device ("mwd") token. */
export interface ParsedToken {
  kind: 'user' | 'device' | 'session';
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

/** A new sign-in session token (`mws.{id}.{secret}`, the cookie's value) and the hash to store for it. */
export function mintSessionToken(id: string): { token: string; tokenHash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `mws.${id}.${secret}`, tokenHash: hashSecret(secret) };
}

/**
 * The CSRF token of a session: derived one way from the cookie's secret, so that no store
 * holds it and a page can learn it (`GET /v1/me/session`) without the cookie being readable.
 */
export function csrfTokenOf(sessionSecret: string): string {
  return createHash('sha256').update(`meshwork csrf\0${sessionSecret}`).digest('base64url');
}

/** Splits a token into kind, id and secret; undefined if it is not one of ours. */
export function parseToken(token: string): ParsedToken | undefined {
  const match = /^(mwu|mwd)\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return undefined;
  return { kind: match[1] === 'mwu' ? 'user' : 'device', id: match[2]!, secret: match[3]! };
}

/** The stored form (sha256 of the secret part) of the user or device token in an Authorization header; undefined for any other header. */
export function presentedSecretHash(header: string | undefined): string | undefined {
  const token = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  const parsed = token === undefined ? undefined : parseToken(token);
  return parsed === undefined ? undefined : hashSecret(parsed.secret);
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * How long a principal found valid is trusted without reading etcd again: the bound on how
 * long a revoked token may still work on a process whose credential watch is behind or down.
 */
export const credentialCacheMillis = 5_000;
const cacheLimit = 50_000;

interface CachedPrincipal {
  secretHash: string;
  principal: Principal;
  expires: number;
  /** A session's end (epoch ms; Infinity for tokens). */
  sessionEnds: number;
}

/** Resolves Authorization headers to principals. */
export class Authenticator {
  readonly #adminHash: string;
  readonly #credentials: Pick<MetadataStore, 'getCredential'>;
  readonly #cacheMillis: number;
  readonly #now: () => number;
  // By user or device id: a revocation names the id, and an id has one valid token at a time.
  readonly #cache = new Map<string, CachedPrincipal>();
  // Lookups in flight by token hash, so that a burst of requests with one new token costs one etcd read.
  readonly #pending = new Map<string, { id: string; lookup: Promise<Principal | undefined> }>();
  // Numbers each revocation; a lookup that overlapped a revocation of its id does not cache what it read.
  #sequence = 0;
  // The number of the last revocation of each id revoked while lookups were in flight (cleared when none are).
  readonly #revokedWhileLooking = new Map<string, number>();
  #lastRevokeAll = 0;
  #lookups = 0;

  constructor(
    adminToken: string,
    credentials: Pick<MetadataStore, 'getCredential'>,
    options: { cacheMillis?: number; now?: () => number } = {},
  ) {
    this.#adminHash = hashSecret(adminToken);
    this.#credentials = credentials;
    this.#cacheMillis = options.cacheMillis ?? credentialCacheMillis;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The principal of an `Authorization: Bearer ...` header or, without one, of the session
   * cookie in `cookie`; 401 when missing, wrong, expired or revoked.
   */
  async authenticate(header: string | undefined, cookie?: string): Promise<Principal> {
    if (header === undefined) {
      const session = sessionTokenOf(cookie);
      if (session !== undefined) return this.#sessionPrincipal(session);
    }
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new ApiError('unauthenticated', 'a bearer token is required', { headers: { 'WWW-Authenticate': 'Bearer' } });
    const token = match[1]!;
    const tokenHash = hashSecret(token);
    if (sameHash(tokenHash, this.#adminHash)) return { kind: 'admin' };
    const parsed = parseToken(token);
    const principal = parsed === undefined ? undefined : await this.#principalOf(parsed, tokenHash);
    if (principal === undefined) {
      throw new ApiError('unauthenticated', 'the bearer token is not valid', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
    return principal;
  }

  async #sessionPrincipal(token: string): Promise<Principal> {
    const parsed = parseSessionToken(token);
    const principal = parsed === undefined ? undefined : await this.#principalOf({ kind: 'session', ...parsed }, hashSecret(token));
    if (principal === undefined) throw new ApiError('unauthenticated', 'the session has ended; sign in again');
    return principal;
  }

  /** Forgets what is cached for a user or device whose credential changed or went. */
  revoke(id: string): void {
    this.#sequence++;
    this.#cache.delete(id);
    if (this.#lookups > 0) this.#revokedWhileLooking.set(id, this.#sequence);
    // A request arriving now must not join a lookup that may have read the old credential.
    for (const [tokenHash, pending] of this.#pending) if (pending.id === id) this.#pending.delete(tokenHash);
  }

  /** Forgets every cached principal: revocations may have been missed (the watch started over). */
  revokeAll(): void {
    this.#sequence++;
    this.#lastRevokeAll = this.#sequence;
    this.#cache.clear();
    this.#pending.clear();
  }

  async #principalOf(parsed: ParsedToken, tokenHash: string): Promise<Principal | undefined> {
    const secretHash = hashSecret(parsed.secret);
    const cached = this.#cache.get(parsed.id);
    if (cached !== undefined && cached.expires > this.#now() && sameHash(cached.secretHash, secretHash)) {
      if (cached.principal.kind === 'session' && cached.sessionEnds <= this.#now()) return undefined;
      return cached.principal;
    }
    let pending = this.#pending.get(tokenHash);
    if (pending === undefined) {
      const lookup = this.#lookup(parsed, secretHash).finally(() => {
        if (this.#pending.get(tokenHash) === pending) this.#pending.delete(tokenHash);
      });
      pending = { id: parsed.id, lookup };
      this.#pending.set(tokenHash, pending);
    }
    return pending.lookup;
  }

  async #lookup(parsed: ParsedToken, secretHash: string): Promise<Principal | undefined> {
    const started = this.#sequence;
    this.#lookups++;
    let credential: CredentialRecord | undefined;
    try {
      credential = (await this.#credentials.getCredential(parsed.id))?.value;
    } finally {
      this.#lookups--;
    }
    const revoked = Math.max(this.#lastRevokeAll, this.#revokedWhileLooking.get(parsed.id) ?? 0) > started;
    if (this.#lookups === 0) this.#revokedWhileLooking.clear();
    if (credential === undefined || credential.kind !== parsed.kind || !sameHash(credential.tokenHash, secretHash)) return undefined;
    // A session past its end is refused even while etcd has not yet dropped its lease's keys.
    const sessionEnds = credential.expiresAt === undefined ? Infinity : Date.parse(credential.expiresAt);
    if (parsed.kind === 'session' && !(sessionEnds > this.#now())) return undefined;
    const principal: Principal =
      parsed.kind === 'user'
        ? { kind: 'user', userId: parsed.id }
        : parsed.kind === 'device'
          ? { kind: 'device', userId: credential.userId, deviceId: parsed.id }
          : { kind: 'session', userId: credential.userId, sessionId: parsed.id, csrfToken: csrfTokenOf(parsed.secret) };
    if (!revoked) {
      if (this.#cache.size >= cacheLimit) this.#cache.clear();
      this.#cache.set(parsed.id, { secretHash, principal, expires: this.#now() + this.#cacheMillis, sessionEnds });
    }
    return principal;
  }
}

/**
 * The one etcd watch per process over every credential key (all slots: a token is presented
 * to whichever partition serves the object): each change or deletion revokes the id's cached
 * principal. After a watch error or a reconnection, when changes may have been missed, the
 * whole cache is dropped.
 */
export class CredentialWatch {
  readonly #etcd: Etcd3;
  readonly #auth: Pick<Authenticator, 'revoke' | 'revokeAll'>;
  readonly #logger: Logger;
  #watcher: Watcher | undefined;
  #stopped = false;

  constructor(etcd: Etcd3, auth: Pick<Authenticator, 'revoke' | 'revokeAll'>, logger: Logger) {
    this.#etcd = etcd;
    this.#auth = auth;
    this.#logger = logger;
  }

  /** Starts watching; resolves once etcd has confirmed the watch. */
  async start(): Promise<void> {
    const watcher = await this.#etcd.watch().prefix(credentialsPrefix).create();
    this.#watcher = watcher;
    const changed = (kv: IKeyValue): void => {
      const id = credentialIdOf(kv.key.toString('utf8'));
      if (id !== undefined) this.#auth.revoke(id);
    };
    watcher.on('put', changed);
    watcher.on('delete', changed);
    // Resumed after a lost connection: etcd replays from the last revision seen, but drop the cache anyway.
    watcher.on('connected', () => this.#auth.revokeAll());
    watcher.on('error', (err) => {
      this.#logger.warn({ err }, 'Restarted the credential watch after a watch error');
      void this.#restart();
    });
  }

  /** Stops the watch. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher?.cancel();
  }

  async #restart(): Promise<void> {
    if (this.#stopped) return;
    this.#auth.revokeAll();
    const old = this.#watcher;
    this.#watcher = undefined;
    await old?.cancel().catch((err: unknown) => this.#logger.warn({ err }, 'Failed to cancel the broken credential watch'));
    try {
      await this.start();
    } catch (err) {
      this.#logger.error({ err }, 'Failed to restart the credential watch; revocations take effect within the cache time to live');
    }
    this.#auth.revokeAll();
  }
}
