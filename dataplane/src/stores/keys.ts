// The etcd key layout. Keys are prefixed by a zero-padded slot, so that one slot, or a range
// of slots, is one contiguous key range that can be scanned, moved or dropped as a unit.
import { slotMapPrefix } from '@meshwork/contract';
import { slotOf } from '../slots.ts';

/** The four-digit form of a slot used in keys ("0042"). */
export function slotSegment(slot: number): string {
  return String(slot).padStart(4, '0');
}

/** Prefix of everything stored for a slot. */
export function slotPrefix(slot: number): string {
  return `/mw/s/${slotSegment(slot)}/`;
}

/** A user's record. */
export function userKey(userId: string): string {
  return `${slotPrefix(slotOf(userId))}u/${userId}`;
}

/** Prefix of the index of objects a user is a member of (one key per object, value: role). */
export function membershipPrefix(userId: string): string {
  return `${userKey(userId)}/m/`;
}

/** One entry of a user's membership index. */
export function membershipKey(userId: string, objectId: string): string {
  return `${membershipPrefix(userId)}${objectId}`;
}

/** Prefix of a user's storage usage: one key per block the user holds (value: its size), for quotas (ADR 24). */
export function usagePrefix(userId: string): string {
  return `${userKey(userId)}/q/`;
}

/** The usage key of a block a user holds. */
export function usageKey(userId: string, sha256: string): string {
  return `${usagePrefix(userId)}${sha256}`;
}

/** A device's record. */
export function deviceKey(deviceId: string): string {
  return `${slotPrefix(slotOf(deviceId))}d/${deviceId}`;
}

/** A device's presence record (soft state under the device's lease). */
export function presenceKey(deviceId: string): string {
  return `${deviceKey(deviceId)}/presence`;
}

/** A mesh object's record. */
export function objectKey(objectId: string): string {
  return `${slotPrefix(slotOf(objectId))}o/${objectId}`;
}

/**
 * Touched by every change to an object's entries: its revision is the object's latest change,
 * which `changes` waits for the change feed to reach.
 */
export function objectHeadKey(objectId: string): string {
  return `${objectKey(objectId)}/head`;
}

/** Prefix of what online devices hold of an object: one key per device, under its presence lease. */
export function holdingsPrefix(objectId: string): string {
  return `${objectKey(objectId)}/p/`;
}

/** What one online device holds of an object. */
export function holdingKey(objectId: string, deviceId: string): string {
  return `${holdingsPrefix(objectId)}${deviceId}`;
}

/** Prefix of the entries of a mesh object; each entry's key ends with its normalised path. */
export function entriesPrefix(objectId: string): string {
  return `${objectKey(objectId)}/e/`;
}

/** An entry (file or directory) of a mesh object. */
export function entryKey(objectId: string, path: string): string {
  return `${entriesPrefix(objectId)}${path}`;
}

/** Prefix of the tombstone markers of one slot, which the sweeper scans per owned slot range. */
export function tombstonesPrefix(slot: number): string {
  return `/mw/t/${slotSegment(slot)}/`;
}

/** The marker of a deleted entry, so that its tombstone can be purged after the retention time. */
export function tombstoneKey(objectId: string, path: string): string {
  return `${tombstonesPrefix(slotOf(objectId))}${objectId}/${path}`;
}

/** Prefix of the slot map: one record per replica of each partition (the operator and the gateway read it too). */
export { slotMapPrefix };

/** A replica's owner record in the slot map; a newer process of the same replica replaces it. */
export function slotMapKey(partition: string, replica: string): string {
  return `${slotMapPrefix}${partition}/${replica}`;
}

/**
 * Prefix of the credentials of every slot: one key per account and per device holding the hash
 * of its token. Kept apart from the records under `/mw/s/` so that each process can watch all
 * credentials (a token is presented to any partition) without seeing the mesh's other writes.
 */
export const credentialsPrefix = '/mw/k/';

/** The credential of a user, device or sign-in session: what its token must hash to, and whose it is. */
export function credentialKey(id: string): string {
  return `${credentialsPrefix}${slotSegment(slotOf(id))}/${id}`;
}

/** The id a credential key names; undefined for any other key. */
export function credentialIdOf(key: string): string | undefined {
  return /^\/mw\/k\/\d{4}\/([A-Za-z0-9_-]{1,64})$/.exec(key)?.[1];
}

/** A user's password (its scrypt hash and parameters; docs/web.md), apart from the record the API answers. */
export function passwordKey(userId: string): string {
  return `${userKey(userId)}/pw`;
}

/** A user's failed sign-ins in a row and how long sign-in is locked (ADR 42). */
export function signInFailuresKey(userId: string): string {
  return `${userKey(userId)}/lf`;
}

/** Prefix of the index of a user's sign-in sessions (one key per session, under the session's lease). */
export function userSessionsPrefix(userId: string): string {
  return `${userKey(userId)}/s/`;
}

/** One entry of a user's session index. */
export function userSessionKey(userId: string, sessionId: string): string {
  return `${userSessionsPrefix(userId)}${sessionId}`;
}

/** Prefix of the index of a user's devices (one key per device; the device's record is the authority). */
export function userDevicesPrefix(userId: string): string {
  return `${userKey(userId)}/d/`;
}

/** One entry of a user's device index. */
export function userDeviceKey(userId: string, deviceId: string): string {
  return `${userDevicesPrefix(userId)}${deviceId}`;
}

/**
 * A block's state record (`live` is its absence, then `deleting`, then `deleted`), in the slot of
 * the block's own hash: a block's records move with that slot (ADR 24). Never deleted, so that
 * a transaction comparing its revision cannot be fooled by a delete and a re-create.
 */
export function blockStateKey(sha256: string): string {
  return `${slotPrefix(slotOf(sha256))}b/${sha256}`;
}

/** Prefix of every block record of one slot: what the collector scans. */
export function blocksPrefix(slot: number): string {
  return `${slotPrefix(slot)}b/`;
}

/** Prefix of a block's holders: the users who uploaded it, one key each (value: when). */
export function blockHoldersPrefix(sha256: string): string {
  return `${blockStateKey(sha256)}/h/`;
}

/** The possession record of a user who uploaded a block. */
export function blockHolderKey(sha256: string, userId: string): string {
  return `${blockHoldersPrefix(sha256)}${userId}`;
}

/** Prefix of a block's references: one key per entry (object and path) that may name it. */
export function blockRefsPrefix(sha256: string): string {
  return `${blockStateKey(sha256)}/r/`;
}

/** The reference of an entry to a block, written before the entry that names it. */
export function blockRefKey(sha256: string, objectId: string, path: string): string {
  return `${blockRefsPrefix(sha256)}${objectId}/${path}`;
}

/**
 * Bumped when the collector drops a reference of the entry at `path`: a commit that wrote its
 * references before compares this key's revision, so a reference dropped under it fails it.
 */
export function refEpochKey(objectId: string, path: string): string {
  return `${objectKey(objectId)}/re/${path}`;
}

/** The service's grant signing keys (ADR 51): one record every partition replica reads, created once. */
export const grantKeysKey = '/mw/grant-keys';

/** Prefix of relay records: which pod holds a device's relay connection (ADR 52), each under that pod's lease. */
export const relayPrefix = '/mw/relay/';

/** The relay record of a device. */
export function relayKey(deviceId: string): string {
  return `${relayPrefix}${deviceId}`;
}
