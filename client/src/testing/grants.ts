// Grants signed as given, for tests: the service signs with the contract's signGrant, which
// sets the times itself; a test needs grants with chosen times, key ids and scopes.
import { sign, type KeyObject } from 'node:crypto';
import type { GrantPayload } from '@meshwork/contract';

/** Signs `payload` exactly as given with `privateKey` (the format of ADR 51). */
export function signGrant(payload: GrantPayload, privateKey: KeyObject): string {
  const head = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${head}.${sign(null, Buffer.from(head, 'ascii'), privateKey).toString('base64url')}`;
}
