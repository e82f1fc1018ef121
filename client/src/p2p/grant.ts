// Grants: short-lived tokens the service signs (Ed25519) to let one device fetch from another;
// the serving agent verifies them offline against the service's public keys (the peer-to-peer
// contract, ADR 54). The format is the service's; it lives here, behind `GrantKeys`, until the
// shared contract module carries it.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** What a grant allows. */
export type GrantScope =
  { kind: 'blocks'; objectId: string; blocks: string[] } | { kind: 'remote'; objects: Record<string, 'reader' | 'writer' | 'owner'> };

/** A grant's payload. */
export interface GrantPayload {
  v: 1;
  kid: string;
  /** The serving device. */
  aud: string;
  /** The requesting device, or `user:<userId>`. */
  sub: string;
  iat: number;
  exp: number;
  scope: GrantScope;
}

/** Where the verifier finds the service's public keys; `refresh` is asked once for an unknown `kid`. */
export interface GrantKeys {
  key(kid: string): KeyObject | undefined;
  refresh?(): Promise<void>;
}

/** Why a grant was refused: `401` for a grant that is not one (missing, forged, expired), `403` for one that does not cover the request. */
export class GrantRefused extends Error {
  readonly status: 401 | 403;
  readonly code: 'unauthorized' | 'forbidden';

  constructor(status: 401 | 403, code: 'unauthorized' | 'forbidden', message: string) {
    super(message);
    this.name = 'GrantRefused';
    this.status = status;
    this.code = code;
  }
}

/** Accepted clock skew between the service and this device. */
export const grantClockSkewSeconds = 30;

const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');

/** Signs a payload into a token (the service's half; tests sign with a key of their own). */
export function signGrant(payload: GrantPayload, privateKey: KeyObject): string {
  const head = b64url(JSON.stringify(payload));
  return `${head}.${b64url(sign(null, Buffer.from(head, 'ascii'), privateKey))}`;
}

/** The public key a `/v1/grants/keys` entry names (the raw 32-byte Ed25519 key, base64url). */
export function grantPublicKey(rawBase64url: string): KeyObject {
  const raw = Buffer.from(rawBase64url, 'base64url');
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  // SPKI of Ed25519: a fixed 12-byte prefix, then the raw key.
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

/** A key set that does not change (tests; a service whose keys are configured). */
export function staticGrantKeys(keys: Record<string, KeyObject>): GrantKeys {
  return { key: (kid) => keys[kid] };
}

function isPayload(p: unknown): p is GrantPayload {
  if (typeof p !== 'object' || p === null) return false;
  const g = p as Record<string, unknown>;
  if (g.v !== 1 || typeof g.kid !== 'string' || typeof g.aud !== 'string' || typeof g.sub !== 'string') return false;
  if (typeof g.iat !== 'number' || typeof g.exp !== 'number') return false;
  const s = g.scope as Record<string, unknown> | null;
  if (typeof s !== 'object' || s === null) return false;
  if (s.kind === 'blocks') return typeof s.objectId === 'string' && Array.isArray(s.blocks) && s.blocks.every((b) => typeof b === 'string');
  if (s.kind === 'remote') return typeof s.objects === 'object' && s.objects !== null;
  return false;
}

/**
 * Verifies a token for this device: signature by a current service key, `aud` this device, not
 * expired (nor issued in the future) beyond the clock skew. Throws GrantRefused; the caller
 * checks the scope against the request.
 */
export async function verifyGrant(
  token: string | undefined,
  keys: GrantKeys,
  deviceId: string,
  nowSeconds = Date.now() / 1000,
): Promise<GrantPayload> {
  if (token === undefined || token === '')
    throw new GrantRefused(401, 'unauthorized', 'a grant is required (Authorization: Grant <token>)');
  const [head, sig, extra] = token.split('.');
  if (head === undefined || sig === undefined || extra !== undefined || head === '' || sig === '')
    throw new GrantRefused(401, 'unauthorized', 'the grant is malformed');
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
  } catch {
    throw new GrantRefused(401, 'unauthorized', 'the grant is malformed');
  }
  if (!isPayload(payload)) throw new GrantRefused(401, 'unauthorized', 'the grant is malformed');
  let key = keys.key(payload.kid);
  if (key === undefined && keys.refresh !== undefined) {
    await keys.refresh();
    key = keys.key(payload.kid);
  }
  if (key === undefined) throw new GrantRefused(401, 'unauthorized', 'the grant is signed by an unknown key');
  if (!verify(null, Buffer.from(head, 'ascii'), key, Buffer.from(sig, 'base64url')))
    throw new GrantRefused(401, 'unauthorized', 'the grant signature does not verify');
  if (payload.exp + grantClockSkewSeconds < nowSeconds) throw new GrantRefused(401, 'unauthorized', 'the grant expired');
  if (payload.iat - grantClockSkewSeconds > nowSeconds) throw new GrantRefused(401, 'unauthorized', 'the grant is issued in the future');
  if (payload.aud !== deviceId) throw new GrantRefused(403, 'forbidden', 'the grant is for another device');
  return payload;
}

/**
 * The service's keys fetched from `GET /v1/grants/keys` through `fetchKeys`, kept, and fetched
 * again when a grant names an unknown `kid` (at most once every `minRefreshMs`, so forged kids
 * cannot make the agent hammer the service).
 */
export function fetchedGrantKeys(
  fetchKeys: () => Promise<{ keys: { kid: string; alg: string; publicKey: string }[] }>,
  minRefreshMs = 10_000,
): GrantKeys {
  let keys = new Map<string, KeyObject>();
  let last = -Infinity;
  let inFlight: Promise<void> | undefined;
  return {
    key: (kid) => keys.get(kid),
    refresh(): Promise<void> {
      if (inFlight !== undefined) return inFlight;
      if (performance.now() - last < minRefreshMs) return Promise.resolve();
      last = performance.now();
      inFlight = fetchKeys()
        .then((answer) => {
          const next = new Map<string, KeyObject>();
          for (const k of answer.keys) if (k.alg === 'Ed25519') next.set(k.kid, grantPublicKey(k.publicKey));
          keys = next;
        })
        .catch(() => undefined) // unreachable service: the grant is refused as unknown, the requester falls back
        .finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}
