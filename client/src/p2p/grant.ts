// Grants on the agent's side: the service signs them (Ed25519, ADR 51) to let one device fetch
// from another, and the serving agent verifies them offline with the contract's verifyGrant
// against the service's public keys, which it fetches from `GET /v1/grants/keys` and fetches
// again when a grant names a key it does not know.
import type { KeyObject } from 'node:crypto';
import {
  decodeGrant,
  GrantError,
  grantKeysOf,
  verifyGrant as verifyWithKeys,
  type GrantPayload,
  type GrantPublicKey,
} from '@meshwork/contract';

export type { GrantPayload, GrantScope } from '@meshwork/contract';

/** Which of a holder's blocks grants (ADR 66) names each block: read from the tokens without verifying them (the holder does that). */
export function grantsByBlock(grants: readonly string[]): Map<string, string> {
  const byBlock = new Map<string, string>();
  for (const grant of grants) {
    const scope = decodeGrant(grant)?.scope;
    if (scope?.kind !== 'blocks') continue;
    for (const sha256 of scope.blocks) if (!byBlock.has(sha256)) byBlock.set(sha256, grant);
  }
  return byBlock;
}
export { GrantError } from '@meshwork/contract';

/** Where the verifier finds the service's public keys; `refresh` is asked once for an unknown `kid`. */
export interface GrantKeys {
  key(kid: string): KeyObject | undefined;
  refresh?(): Promise<void>;
}

/** A key set that does not change (tests; a service whose keys are configured). */
export function staticGrantKeys(keys: Record<string, KeyObject>): GrantKeys {
  return { key: (kid) => keys[kid] };
}

/**
 * Verifies a token for this device: signature by a current service key, `aud` this device, not
 * expired (nor issued in the future) beyond the clock skew. Throws a GrantError (401: not a
 * valid grant; 403: for another device); the caller checks the scope against the request.
 */
export async function verifyGrant(
  token: string | undefined,
  keys: GrantKeys,
  deviceId: string,
  nowSeconds = Date.now() / 1000,
): Promise<GrantPayload> {
  if (token === undefined || token === '') throw new GrantError('unauthenticated', 'a grant is required (Authorization: Grant <token>)');
  const kid = decodeGrant(token)?.kid;
  let key = kid === undefined ? undefined : keys.key(kid);
  if (kid !== undefined && key === undefined && keys.refresh !== undefined) {
    await keys.refresh();
    key = keys.key(kid);
  }
  return verifyWithKeys(token, {
    keys: new Map(kid !== undefined && key !== undefined ? [[kid, key]] : []),
    audience: deviceId,
    now: nowSeconds * 1000,
  });
}

/**
 * The service's keys fetched from `GET /v1/grants/keys` through `fetchKeys`, kept, and fetched
 * again when a grant names an unknown `kid` (at most once every `minRefreshMs`, so forged kids
 * cannot make the agent hammer the service).
 */
export function fetchedGrantKeys(fetchKeys: () => Promise<{ keys: readonly GrantPublicKey[] }>, minRefreshMs = 10_000): GrantKeys {
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
          keys = grantKeysOf(answer);
        })
        .catch(() => undefined) // unreachable service: the grant is refused as unknown, the requester falls back
        .finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}
