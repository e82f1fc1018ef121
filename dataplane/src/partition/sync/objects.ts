// Mesh objects (shared folders) and their members: create in the owner's slot, list, rename,
// delete, share and unshare. Every change of an object record is a compare on its revision,
// so a concurrent change is 409 rather than a lost update; the write cache forgets the object
// first, so the next entry write reads it afresh.
import { ApiError } from '@meshwork/contract';
import type { Logger } from 'pino';
import { mintIdInSlot, slotOf } from '../../slots.ts';
import type { MetadataStore, ObjectRecord, Role, Versioned } from '../../stores/metadata-store.ts';
import { invalidRequest, notFound } from '../errors.ts';
import type { ObjectAccess } from './access.ts';

/** Public view of an object for a given member. */
export function objectView(object: Versioned<ObjectRecord>, userId: string): Record<string, unknown> {
  const o = object.value;
  return {
    id: o.id,
    name: o.name,
    owner: o.owner,
    role: o.members[userId],
    members: Object.entries(o.members).map(([memberId, role]) => ({ userId: memberId, role })),
    cloudStorage: o.cloudStorage,
    createdAt: o.createdAt,
    version: String(object.version),
  };
}

/** A new object's record: the owner its only member, minted in the owner's slot. */
export function newObjectRecord(ownerId: string, name: string, cloudStorage: boolean, now: Date): ObjectRecord {
  // In the owner's slot so the object and the owner's index commit in one partition.
  const id = mintIdInSlot('o', slotOf(ownerId));
  return { id, name, owner: ownerId, members: { [ownerId]: 'owner' }, cloudStorage, createdAt: now.toISOString(), historyFloor: 0 };
}

/** The members after giving `memberId` the role `role`; 400 for the owner, whose role is fixed. */
export function membersWith(object: ObjectRecord, memberId: string, role: Role): Record<string, Role> {
  if (memberId === object.owner) throw invalidRequest('userId', 'userId: the owner keeps the owner role');
  return { ...object.members, [memberId]: role };
}

/** The members after removing `memberId`; 400 for the owner, 404 for someone not a member. */
export function membersWithout(object: ObjectRecord, memberId: string): Record<string, Role> {
  if (memberId === object.owner) throw invalidRequest('userId', 'userId: the owner cannot be removed');
  if (object.members[memberId] === undefined) throw notFound(`member ${memberId}`);
  const members = { ...object.members };
  delete members[memberId];
  return members;
}

function changedMeanwhile(id: string): ApiError {
  return new ApiError('conflict', `object ${id} changed meanwhile; retry`);
}

/** What object operations need: the metadata store, the access rule with its cache, a logger. */
export interface ObjectDeps {
  metadata: Pick<MetadataStore, 'createObject' | 'getObject' | 'updateObject' | 'deleteObject' | 'listMemberships' | 'getUser'>;
  access: ObjectAccess;
  logger: Logger;
}

/** Creates an object owned by `ownerId`. */
export async function createObject(
  deps: ObjectDeps,
  ownerId: string,
  body: { name: string; cloudStorage: boolean },
): Promise<Versioned<ObjectRecord>> {
  const record = newObjectRecord(ownerId, body.name, body.cloudStorage, new Date());
  if (!(await deps.metadata.createObject(record))) throw new ApiError('conflict', `object ${record.id} already exists`);
  const created = await deps.metadata.getObject(record.id);
  if (created === undefined) throw new ApiError('internal', 'the object vanished after it was created');
  deps.logger.info({ objectId: record.id, userId: ownerId }, 'Created object');
  return created;
}

/** The objects `userId` is a member of. */
export async function listObjects(deps: ObjectDeps, userId: string): Promise<Versioned<ObjectRecord>[]> {
  const memberships = await deps.metadata.listMemberships(userId);
  const objects = await Promise.all(memberships.map((m) => deps.metadata.getObject(m.objectId)));
  // The index is maintained in the same transactions as the objects, but the object is the authority.
  return objects.filter((o): o is Versioned<ObjectRecord> => o !== undefined && o.value.members[userId] !== undefined);
}

/** Renames an object the caller may write; answers the object as `userId` now reads it. */
export async function renameObject(
  deps: ObjectDeps,
  userId: string,
  object: Versioned<ObjectRecord>,
  name: string,
): Promise<Versioned<ObjectRecord>> {
  const id = object.value.id;
  deps.access.forget(id);
  if (!(await deps.metadata.updateObject(object, { ...object.value, name }))) throw changedMeanwhile(id);
  const updated = await deps.access.load(userId, id, 'reader');
  deps.logger.info({ objectId: id, name }, 'Renamed object');
  return updated;
}

/** Deletes an object its owner asked to delete. */
export async function deleteObject(deps: ObjectDeps, object: Versioned<ObjectRecord>): Promise<void> {
  const id = object.value.id;
  deps.access.forget(id);
  if (!(await deps.metadata.deleteObject(object))) throw changedMeanwhile(id);
  deps.logger.info({ objectId: id }, 'Deleted object');
}

/** Gives `memberId` a role in an object its owner shares (404 for an unknown user). */
export async function shareObject(deps: ObjectDeps, object: Versioned<ObjectRecord>, memberId: string, role: Role): Promise<void> {
  const id = object.value.id;
  const members = membersWith(object.value, memberId, role);
  if ((await deps.metadata.getUser(memberId)) === undefined) throw notFound(`user ${memberId}`);
  deps.access.forget(id);
  if (!(await deps.metadata.updateObject(object, { ...object.value, members }))) throw changedMeanwhile(id);
  deps.logger.info({ objectId: id, memberId, role }, 'Shared object');
}

/** Removes `memberId` from an object its owner unshares. */
export async function unshareObject(deps: ObjectDeps, object: Versioned<ObjectRecord>, memberId: string): Promise<void> {
  const id = object.value.id;
  const members = membersWithout(object.value, memberId);
  deps.access.forget(id);
  if (!(await deps.metadata.updateObject(object, { ...object.value, members }))) throw changedMeanwhile(id);
  deps.logger.info({ objectId: id, memberId }, 'Unshared object');
}
