// Accounts: users (created by the administrator in a slot this partition owns), devices
// (registered in their user's slot, listed and deleted by their user), account token rotation
// and who a caller is. Tokens are minted here and only their hashes stored (auth.ts); deleting a
// device or rotating a token replaces or removes the credential, which every process's watch
// sees (auth.ts, CredentialWatch).
import { ApiError } from '@meshwork/contract';
import type { Logger } from 'pino';
import { mintIdInSlot, slotOf, type SlotRange } from '../../slots.ts';
import type { DeviceRecord, ListedDevice, MetadataStore, UserRecord } from '../../stores/metadata-store.ts';
import { withSlotFence, type SlotFence } from '../../stores/slot-fence.ts';
import type { PresenceStore } from '../../stores/presence-store.ts';
import { mintToken, type Principal } from '../auth.ts';

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

/** What account operations need: the metadata store, presence (cleared with a device), the slots this partition owns, a logger. */
export interface AccountDeps {
  metadata: Pick<
    MetadataStore,
    | 'createUser'
    | 'createDevice'
    | 'getUser'
    | 'getDevice'
    | 'getCredential'
    | 'replaceAccountCredential'
    | 'deleteDevice'
    | 'listUserDevices'
    | 'storageUsed'
    | 'setUserQuota'
  >;
  presence: Pick<PresenceStore, 'remove'>;
  /** The slots this partition serves: fixed ranges, or read at each creation when owner keys can move them (ADR 34). */
  slots: readonly SlotRange[] | (() => readonly SlotRange[]);
  /** The slot fence of a new user's slot (undefined: unfenced). */
  fenceFor?: (slot: number) => SlotFence | undefined;
  logger: Logger;
}

/** A user or device acting for its user. */
type Caller = Exclude<Principal, { kind: 'admin' }>;

/** A device as `GET /v1/devices` answers it. */
export interface DeviceListing {
  id: string;
  name: string;
  createdAt: string;
  online: boolean;
  current: boolean;
}

/** Whether `caller` may delete `device` (undefined: no such device): its user's account token, or the device itself. */
export function deviceRemovalDecision(caller: Caller, device: DeviceRecord | undefined): 'allowed' | 'not_found' | 'forbidden' {
  // Another user's device is not found, exactly like a missing one: a caller never learns that it exists.
  if (device === undefined || device.userId !== caller.userId) return 'not_found';
  if (caller.kind === 'device' && caller.deviceId !== device.id) return 'forbidden';
  return 'allowed';
}

/** Creates a user in a random owned slot; the token is answered once and never stored. */
export async function createUser(deps: AccountDeps, name: string): Promise<{ id: string; name: string; createdAt: string; token: string }> {
  const ranges = typeof deps.slots === 'function' ? deps.slots() : deps.slots;
  if (ranges.length === 0) {
    throw new ApiError('slot_moving', 'this partition serves no slots at the moment; retry', { headers: { 'Retry-After': '1' } });
  }
  const slot = slotAt(ranges, Math.random());
  const id = mintIdInSlot('u', slot);
  const { token, tokenHash } = mintToken('user', id);
  const createdAt = new Date().toISOString();
  const created = await withSlotFence(deps.fenceFor?.(slot), () => deps.metadata.createUser({ id, name, tokenHash, createdAt }));
  if (!created) throw new ApiError('conflict', `user ${id} already exists`);
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
  if (!(await deps.metadata.createDevice({ id, userId, name, tokenHash, createdAt })))
    throw new ApiError('conflict', `device ${id} already exists`);
  deps.logger.info({ userId, deviceId: id }, 'Registered device');
  return { id, userId, name, createdAt, token };
}

/** The caller's user record; 401 when the account was removed while its token was cached. */
export async function currentUser(deps: AccountDeps, userId: string): Promise<UserRecord> {
  const user = await deps.metadata.getUser(userId);
  if (user === undefined) throw new ApiError('unauthenticated', 'the account no longer exists');
  return user;
}

/** The devices of the caller's user, marking the caller's own. */
export async function listDevices(deps: AccountDeps, caller: Caller): Promise<DeviceListing[]> {
  const devices: ListedDevice[] = await deps.metadata.listUserDevices(caller.userId);
  const self = caller.kind === 'device' ? caller.deviceId : undefined;
  return devices.map((d) => ({ id: d.id, name: d.name, createdAt: d.createdAt, online: d.online, current: d.id === self }));
}

/**
 * Deletes a device: its record and its credential go in one write (its token stops working on
 * every process within the bound documented in docs/api.md), then its presence.
 */
export async function deleteDevice(deps: AccountDeps, caller: Caller, deviceId: string): Promise<void> {
  const device = await deps.metadata.getDevice(deviceId);
  const decision = deviceRemovalDecision(caller, device?.value);
  if (decision === 'not_found' || device === undefined) throw new ApiError('not_found', `device ${deviceId} not found`);
  if (decision === 'forbidden')
    throw new ApiError('forbidden', 'a device may delete only itself; use the account token to delete another device');
  // A concurrent delete of the same device (the only other write to its record) already did the work.
  if (!(await deps.metadata.deleteDevice(device)) && (await deps.metadata.getDevice(deviceId)) !== undefined) {
    throw new ApiError('conflict', `device ${deviceId} changed while it was being deleted; retry`);
  }
  await deps.presence.remove(deviceId);
  deps.logger.info({ userId: caller.userId, deviceId, by: caller.kind === 'device' ? caller.deviceId : 'account' }, 'Deleted device');
}

/**
 * Replaces the caller's account token (`presentedHash`: the hash of the secret it presented):
 * the answer carries the new token, once, and the old one stops working.
 */
export async function rotateAccountToken(deps: AccountDeps, userId: string, presentedHash: string): Promise<{ id: string; token: string }> {
  const credential = await deps.metadata.getCredential(userId);
  // Read afresh, not from the authenticator's cache: a token already replaced (still cached
  // somewhere for a moment) must not replace its successor.
  if (credential === undefined || credential.value.tokenHash !== presentedHash) {
    throw new ApiError('unauthenticated', 'the bearer token is not valid', {
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
  }
  const { token, tokenHash } = mintToken('user', userId);
  if (!(await deps.metadata.replaceAccountCredential(userId, credential.version, tokenHash))) {
    throw new ApiError('conflict', 'the account token was rotated concurrently; the token of this request no longer works');
  }
  deps.logger.info({ userId }, 'Rotated account token');
  return { id: userId, token };
}
