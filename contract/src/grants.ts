// Grants (ADR 51): short-lived tokens the service signs so that one device may fetch blocks
// from another, or so that a relayed request may browse a device's files, without the serving
// device asking the service. The partition issues them; the agent verifies them offline with
// the service's public keys (`GET /v1/grants/keys`). Format and verification live here because
// both sides must read a token exactly alike.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { MeshworkError } from './errors.ts';

/** How long a grant lasts by default, in seconds. */
export const grantLifetimeSeconds = 300;
/** How far a verifier's clock may be ahead of or behind the signer's, in seconds. */
export const grantClockSkewSeconds = 30;
/** The header a device sends a blocks grant in to `…/remote/blocks/{sha256}`. */
export const grantHeaderName = 'meshwork-grant';

/**
 * The most blocks one blocks grant names (ADR 66). A block costs about 89 bytes of token (its
 * hex sha256 quoted, in base64url), so 128 make a token of about 11.5 KiB: inside Node's 16 KiB
 * limit of an HTTP/1.1 request's headers with room for the others. A file of more distinct
 * blocks gets several grants.
 */
export const maxBlocksPerGrant = 128;

/** A file's distinct blocks in the order they first appear, split into the block lists of its grants (ADR 66). */
export function grantBlockLists(blocks: readonly string[]): string[][] {
  const distinct = [...new Set(blocks)];
  const lists: string[][] = [];
  for (let i = 0; i < distinct.length; i += maxBlocksPerGrant) lists.push(distinct.slice(i, i + maxBlocksPerGrant));
  return lists;
}

/** A role in a mesh object as a remote grant carries it. */
export type GrantRole = 'reader' | 'writer' | 'owner';

/** What a grant allows. */
export type GrantScope = { kind: 'blocks'; objectId: string; blocks: string[] } | { kind: 'remote'; objects: Record<string, GrantRole> };

/** The signed payload of a grant. */
export interface GrantPayload {
  v: 1;
  /** The id of the service key that signed it. */
  kid: string;
  /** The serving device. */
  aud: string;
  /** The requesting device, or `user:<userId>` for a person's remote access. */
  sub: string;
  /** Issued at, unix seconds. */
  iat: number;
  /** Expires at, unix seconds. */
  exp: number;
  scope: GrantScope;
}

/** A public key as `GET /v1/grants/keys` lists it. */
export interface GrantPublicKey {
  kid: string;
  alg: 'Ed25519';
  /** base64url of the raw 32-byte Ed25519 public key. */
  publicKey: string;
}

/** A signing key: its id and its Ed25519 private key. */
export interface GrantSigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** Why a grant was refused: `unauthenticated` (401: malformed, bad signature, unknown key, expired) or `forbidden` (403: other audience, out of scope). */
export class GrantError extends MeshworkError {
  declare readonly code: 'unauthenticated' | 'forbidden';
  readonly status: 401 | 403;

  constructor(code: 'unauthenticated' | 'forbidden', message: string) {
    super(code, message);
    this.status = code === 'unauthenticated' ? 401 : 403;
  }

  /** The JSON error envelope a peer answers with. */
  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

/** The raw 32-byte public key of an Ed25519 key, base64url. */
export function rawPublicKeyOf(key: KeyObject): string {
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return spki.subarray(ed25519SpkiPrefix.length).toString('base64url');
}

/** An Ed25519 public key from the base64url of its raw 32 bytes (as the keys route lists it). */
export function publicKeyFromRaw(raw: string): KeyObject {
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([ed25519SpkiPrefix, bytes]), format: 'der', type: 'spki' });
}

/** An Ed25519 private key from its PKCS#8 DER, base64url (as the service stores it). */
export function privateKeyFromPkcs8(der: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(der, 'base64url'), format: 'der', type: 'pkcs8' });
}

/** Signs a grant: `base64url(JSON payload) + "." + base64url(Ed25519 signature of the first part)`. */
export function signGrant(
  key: GrantSigningKey,
  fields: Omit<GrantPayload, 'v' | 'kid' | 'iat' | 'exp'>,
  now = Date.now(),
  lifetimeSeconds = grantLifetimeSeconds,
): string {
  const iat = Math.floor(now / 1000);
  const payload: GrantPayload = {
    v: 1,
    kid: key.kid,
    aud: fields.aud,
    sub: fields.sub,
    iat,
    exp: iat + lifetimeSeconds,
    scope: fields.scope,
  };
  const head = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signature = sign(null, Buffer.from(head, 'ascii'), key.privateKey).toString('base64url');
  return `${head}.${signature}`;
}

const base64url = /^[A-Za-z0-9_-]+$/;
const sha256Hex = /^[0-9a-f]{64}$/;
const roles = new Set(['reader', 'writer', 'owner']);

function isStringRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isScope(value: unknown): value is GrantScope {
  if (!isStringRecord(value)) return false;
  if (value.kind === 'blocks') {
    return (
      typeof value.objectId === 'string' &&
      Array.isArray(value.blocks) &&
      value.blocks.every((b) => typeof b === 'string' && sha256Hex.test(b))
    );
  }
  if (value.kind === 'remote') {
    return isStringRecord(value.objects) && Object.values(value.objects).every((r) => typeof r === 'string' && roles.has(r));
  }
  return false;
}

function isPayload(value: unknown): value is GrantPayload {
  if (!isStringRecord(value)) return false;
  return (
    value.v === 1 &&
    typeof value.kid === 'string' &&
    typeof value.aud === 'string' &&
    typeof value.sub === 'string' &&
    Number.isSafeInteger(value.iat) &&
    Number.isSafeInteger(value.exp) &&
    isScope(value.scope)
  );
}

/** The payload of a grant without checking it: for logs and for picking the key (`kid`). Undefined when it is not a grant. */
export function decodeGrant(token: string): GrantPayload | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || token.length > 64 * 1024) return undefined;
  const head = token.slice(0, dot);
  if (!base64url.test(head)) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    return isPayload(payload) ? payload : undefined;
  } catch {
    return undefined;
  }
}

/** What a request asks of a grant: a block, or a remote read of an object. */
export type GrantRequest = { kind: 'blocks'; sha256: string } | { kind: 'remote'; objectId: string };

/**
 * Verifies a grant for a request to device `audience`: its signature with one of `keys` (by
 * `kid`), its audience, its lifetime (with the clock skew allowed either way) and that its scope
 * covers `request` (omit it to check all but the scope). Returns the payload; throws a GrantError.
 */
export function verifyGrant(
  token: string,
  options: { keys: ReadonlyMap<string, KeyObject>; audience: string; request?: GrantRequest; now?: number },
): GrantPayload {
  const payload = decodeGrant(token);
  const signature = token.slice(token.indexOf('.') + 1);
  if (payload === undefined || !base64url.test(signature)) throw new GrantError('unauthenticated', 'the grant is not a grant');
  const key = options.keys.get(payload.kid);
  if (key === undefined) throw new GrantError('unauthenticated', `the grant is signed with an unknown key ${payload.kid}`);
  const head = token.slice(0, token.indexOf('.'));
  if (!verify(null, Buffer.from(head, 'ascii'), key, Buffer.from(signature, 'base64url'))) {
    throw new GrantError('unauthenticated', 'the grant signature does not verify');
  }
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (now > payload.exp + grantClockSkewSeconds) throw new GrantError('unauthenticated', 'the grant has expired');
  if (payload.iat > now + grantClockSkewSeconds) throw new GrantError('unauthenticated', 'the grant is issued in the future');
  if (payload.aud !== options.audience) throw new GrantError('forbidden', 'the grant is for another device');
  const request = options.request;
  if (request !== undefined && !grantCovers(payload.scope, request))
    throw new GrantError('forbidden', 'the grant does not cover this request');
  return payload;
}

/** Whether a grant's scope covers a request. */
export function grantCovers(scope: GrantScope, request: GrantRequest): boolean {
  if (request.kind === 'blocks') return scope.kind === 'blocks' && scope.blocks.includes(request.sha256);
  return scope.kind === 'remote' && Object.hasOwn(scope.objects, request.objectId);
}

/** The verification keys of a `GET /v1/grants/keys` answer, by kid (entries that are not Ed25519 keys are skipped). */
export function grantKeysOf(body: { keys: readonly GrantPublicKey[] }): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const key of body.keys) {
    if (key.alg !== 'Ed25519') continue;
    try {
      keys.set(key.kid, publicKeyFromRaw(key.publicKey));
    } catch {
      // Not a key: leave it out, a grant naming it is refused as signed with an unknown key.
    }
  }
  return keys;
}

/**
 * The WebSocket close code of a device's relay that a newer relay of the same device replaced
 * (a second `meshwork sync` on the device, ADR 52): the agent does not reconnect on it, so two
 * processes of one device do not take the relay from each other in turn.
 */
export const relayReplacedCloseCode = 4001;
