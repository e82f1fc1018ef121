// What the partition's request handlers share, and helpers every route uses.
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { PartitionConfig } from '../config.ts';
import type { ProcessHealth } from '../health/health.ts';
import { rangesContain } from '../slots.ts';
import type { BlockStore } from '../stores/block-store.ts';
import type { PresenceStore } from '../stores/presence-store.ts';
import type { MetadataStore, ObjectRecord, Role, Versioned } from '../stores/metadata-store.ts';
import type { DataplaneMetrics } from '../telemetry/metrics.ts';
import type { Tracing } from '../telemetry/tracing.ts';
import { ApiError, notFound } from './api-error.ts';
import type { Authenticator, Principal } from './auth.ts';
import type { ChangeFeed } from './change-feed.ts';
import type { LongPolls } from './long-poll/long-polls.ts';
import type { SlotMap } from './slot-map.ts';
import type { Throttle } from './throttle/throttle.ts';

export interface PartitionContext {
  config: PartitionConfig;
  /** Object records recently read for writes; see loadObjectForWrite. */
  objectCache: Map<string, { object: Versioned<ObjectRecord>; expires: number }>;
  metadata: MetadataStore;
  blocks: BlockStore;
  slotMap: SlotMap;
  auth: Authenticator;
  changeFeed: ChangeFeed;
  /** Waiting notification and changes polls: `open` for a gauge, `drain()` on SIGTERM. */
  longPolls: LongPolls;
  /** Devices online, their endpoints and what they hold (under etcd leases). */
  presence: PresenceStore;
  logger: Logger;
  /** This process's metrics; other modules register theirs on `metrics.registry`. */
  metrics: DataplaneMetrics;
  /** Tracing (a no-op unless OTLP export is configured). */
  tracing: Tracing;
  /** Liveness, readiness (draining included) and deep health. */
  health: ProcessHealth;
  /** Static and dynamic request limits; long-poll routes take places with acquireLongPoll. */
  throttle: Throttle;
}

/** Authenticates the request; 401 without a valid token. */
export async function principalOf(ctx: PartitionContext, req: Request, res: Response): Promise<Principal> {
  const known = res.locals.principal as Principal | undefined;
  if (known) return known;
  // The throttle's gate authenticated already and failed: the same answer, without a second lookup.
  if (res.locals.authError !== undefined) throw res.locals.authError;
  const principal = await ctx.auth.authenticate(req.headers.authorization);
  res.locals.principal = principal;
  return principal;
}

/** A principal acting for a user (account or device token); the administrator is refused. */
export async function memberPrincipalOf(ctx: PartitionContext, req: Request, res: Response): Promise<Exclude<Principal, { kind: 'admin' }>> {
  const principal = await principalOf(ctx, req, res);
  if (principal.kind === 'admin') throw new ApiError(403, 'forbidden', 'the administrator token cannot act as a user');
  return principal;
}

/** Answers 421 with the owner's address unless this partition owns `slot`. */
export async function requireOwnedSlot(ctx: PartitionContext, slot: number, what: string): Promise<void> {
  if (rangesContain(ctx.config.slots, slot)) return;
  const owner = await ctx.slotMap.ownerOf(slot);
  throw new ApiError(421, 'misdirected', `${what} is in slot ${slot}, which partition ${ctx.config.partition} does not own`, {
    slot,
    owner: owner?.url ?? null,
    ownerPartition: owner?.partition ?? null,
  });
}

const rank: Record<Role, number> = { reader: 1, writer: 2, owner: 3 };

/**
 * Loads an object for a caller who needs at least `need`. An object the caller is not a
 * member of is reported as not found, exactly like one that does not exist.
 */
export async function loadObjectFor(ctx: PartitionContext, userId: string, objectId: string, need: Role): Promise<Versioned<ObjectRecord>> {
  return checkObjectAccess(await ctx.metadata.getObject(objectId), userId, objectId, need);
}

/** The access rule of loadObjectFor, for an object record read by other means. */
export function checkObjectAccess(object: Versioned<ObjectRecord> | undefined, userId: string, objectId: string, need: Role): Versioned<ObjectRecord> {
  const role = object?.value.members[userId];
  if (object === undefined || role === undefined) throw notFound(`object ${objectId}`);
  if (rank[role] < rank[need]) throw new ApiError(403, 'forbidden', `${need === 'owner' ? 'only the owner' : 'a writer or the owner'} may do this; you are a ${role}`);
  return object;
}

// Long enough to serve a burst of commits from one read, short enough to bound memory churn.
const objectCacheMillis = 5000;
const objectCacheLimit = 10_000;

/**
 * Like loadObjectFor, but may answer from a short-lived cache. Only for writes: every entry
 * transaction compares the object's revision, so a stale record (a member removed, the object
 * deleted) fails the compare, is forgotten, and the retry reads afresh.
 */
export async function loadObjectForWrite(ctx: PartitionContext, userId: string, objectId: string, need: Role): Promise<Versioned<ObjectRecord>> {
  const cached = ctx.objectCache.get(objectId);
  if (cached && cached.expires > Date.now()) {
    const role = cached.object.value.members[userId];
    if (role !== undefined && rank[role] >= rank[need]) return cached.object;
  }
  const object = await loadObjectFor(ctx, userId, objectId, need);
  if (ctx.objectCache.size >= objectCacheLimit) ctx.objectCache.clear();
  ctx.objectCache.set(objectId, { object, expires: Date.now() + objectCacheMillis });
  return object;
}

/** Drops an object from the write cache after it changed. */
export function forgetObject(ctx: PartitionContext, objectId: string): void {
  ctx.objectCache.delete(objectId);
}

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
