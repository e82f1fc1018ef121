// Accounts: users (created by the administrator in a slot this partition owns), devices
// (registered in their user's slot) and who a caller is. Tokens are minted here and only their
// hashes stored (auth.ts).
import { ApiError } from '@meshwork/contract';
import type { Logger } from 'pino';
import { mintIdInSlot, slotOf, type SlotRange } from '../../slots.ts';
import type { MetadataStore, UserRecord } from '../../stores/metadata-store.ts';
import { mintToken } from '../auth.ts';

/** The slot of a uniform pick `pick` (0 ≤ pick < 1) over the slots of `ranges`, for minting user ids. */
export function slotAt(ranges: readonly SlotRange[], pick: number): number {
  const total = ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  let index = Math.floor(pick * total);
  for (const r of ranges) {
    const size = r.last - r.first + 1;
    if (index < size) return r.first + index;
    index -= size;
  }
  return ranges[0]!.first;
}

/** What account operations need: the metadata store, the slots this partition owns, a logger. */
export interface AccountDeps {
  metadata: Pick<MetadataStore, 'createUser' | 'createDevice' | 'getUser' | 'storageUsed' | 'setUserQuota'>;
  slots: readonly SlotRange[];
  logger: Logger;
}

/** Creates a user in a random owned slot; the token is answered once and never stored. */
export async function createUser(deps: AccountDeps, name: string): Promise<{ id: string; name: string; createdAt: string; token: string }> {
  const id = mintIdInSlot('u', slotAt(deps.slots, Math.random()));
  const { token, tokenHash } = mintToken('user', id);
  const createdAt = new Date().toISOString();
  if (!(await deps.metadata.createUser({ id, name, tokenHash, createdAt }))) throw new ApiError('conflict', `user ${id} already exists`);
  deps.logger.info({ userId: id }, 'Created user');
  return { id, name, createdAt, token };
}

/** Registers a device of `userId` in the user's slot; the token is answered once. */
export async function registerDevice(
  deps: AccountDeps,
  userId: string,
  name: string,
): Promise<{ id: string; userId: string; name: string; createdAt: string; token: string }> {
  const id = mintIdInSlot('d', slotOf(userId));
  const { token, tokenHash } = mintToken('device', id);
  const createdAt = new Date().toISOString();
  if (!(await deps.metadata.createDevice({ id, userId, name, tokenHash, createdAt }))) throw new ApiError('conflict', `device ${id} already exists`);
  deps.logger.info({ userId, deviceId: id }, 'Registered device');
  return { id, userId, name, createdAt, token };
}

/** The caller's user record; 401 when the account was removed while its token was cached. */
export async function currentUser(deps: AccountDeps, userId: string): Promise<UserRecord> {
  const user = await deps.metadata.getUser(userId);
  if (user === undefined) throw new ApiError('unauthenticated', 'the account no longer exists');
  return user;
}
