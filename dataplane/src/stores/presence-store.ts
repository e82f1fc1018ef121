// Presence: which devices are online, where they can be reached, and which entry versions
// they hold. Soft state in etcd under one lease per device, so a device that goes quiet
// vanishes after the TTL with nothing to clean up. A device's record sits in its own slot;
// what it holds of an object sits under that object, so that the object's partition lists
// the holders of a file with one range read.
import { createHash } from 'node:crypto';
import { MeshworkError } from '@meshwork/contract';
import type { Etcd3, IRequestOp } from 'etcd3';
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3/lib/rpc.js';
import { holdingKey, holdingsPrefix, presenceKey } from './keys.ts';

/** An entry version a device holds. */
export interface Hold {
  path: string;
  version: string;
}

/** What a device holds of one object: single versions, and everything current as of a cursor. */
export interface ObjectHolds {
  versions: Hold[];
  /** The device is synced through this cursor: it holds every entry whose version is at most it. */
  cursor?: string;
}

/** What a device says about itself. */
export interface Presence {
  deviceId: string;
  userId: string;
  /** URLs the device serves blocks at. */
  endpoints: string[];
  /** The lowercase hex sha256 of the DER of the device's TLS certificate, which requesters pin. */
  fingerprint?: string;
  /** Object id → what the device holds of it. */
  holds: Map<string, ObjectHolds>;
}

/** A device's holdings of one object, as another device asking for sources sees them. */
export interface Holding extends ObjectHolds {
  deviceId: string;
  userId: string;
  endpoints: string[];
  fingerprint?: string;
}

/** Whether a holding includes version `version` of `path`. */
export function holdsVersion(holding: ObjectHolds, path: string, version: string): boolean {
  if (holding.cursor !== undefined && Number(version) <= Number(holding.cursor)) return true;
  return holding.versions.some((h) => h.path === path && h.version === version);
}

interface PresenceRecord {
  deviceId: string;
  userId: string;
  /** The etcd lease every key of this presence is attached to (decimal). */
  lease: string;
  endpoints: string[];
  objects: string[];
  /** sha256 of what was written: a refresh with the same content only renews the lease. */
  digest: string;
  updatedAt: string;
}

// etcd's default limit on the operations of one transaction (--max-txn-ops).
const maxOpsPerTxn = 128;
const keepAliveTimeoutMs = 5000;

/** Raised when etcd no longer knows a lease (it expired between our steps). */
class LeaseGoneError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('lease_gone', message, options);
  }
}

/** A lease keep-alive that etcd did not answer: a store failure (503 `store_unavailable`), like the etcd client's own errors. */
export class EtcdKeepAliveError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
  }
}

/** Raised when the same device's presence kept changing under a write. */
export class PresenceConflictError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('presence_conflict', message, options);
  }
}

/**
 * Renews leases by id over one keep-alive stream for the whole process: a device's presence
 * may be renewed by any replica, which has no lease object of its own for it.
 */
class LeaseRenewer {
  readonly #etcd: Etcd3;
  #stream: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  readonly #waiting: { id: string; resolve: (ttl: number) => void; reject: (err: Error) => void }[] = [];

  constructor(etcd: Etcd3) {
    this.#etcd = etcd;
  }

  /** Renews a lease; resolves with its new TTL in seconds, 0 when etcd no longer knows it. */
  async renew(id: string): Promise<number> {
    const stream = await this.#open();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new EtcdKeepAliveError(`etcd did not answer a lease keep-alive within ${keepAliveTimeoutMs} ms`));
      }, keepAliveTimeoutMs);
      this.#waiting.push({
        id,
        resolve: (ttl) => {
          clearTimeout(timer);
          resolve(ttl);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      stream.write({ ID: id });
    });
  }

  close(): void {
    void this.#stream?.then((s) => s.end()).catch(() => undefined);
    this.#stream = undefined;
  }

  #open(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    this.#stream ??= this.#etcd.leaseClient.leaseKeepAlive().then((stream) => {
      // etcd answers keep-alives of one stream in order.
      stream.on('data', (res) => {
        const next = this.#waiting.shift();
        if (next === undefined) return;
        if (res.ID !== next.id) next.reject(new EtcdKeepAliveError(`keep-alive answer for lease ${res.ID}, expected ${next.id}`));
        else next.resolve(Number(res.TTL));
      });
      stream.on('error', (err) => this.#fail(new EtcdKeepAliveError(`the lease keep-alive stream failed: ${err.message}`, { cause: err })));
      stream.on('end', () => this.#fail(new EtcdKeepAliveError('the lease keep-alive stream ended')));
      return stream;
    });
    this.#stream.catch(() => {
      this.#stream = undefined;
    });
    return this.#stream;
  }

  #fail(err: EtcdKeepAliveError): void {
    const stream = this.#stream;
    this.#stream = undefined;
    void stream?.then((s) => s.cancel()).catch(() => undefined);
    for (const waiting of this.#waiting.splice(0)) waiting.reject(err);
  }
}

/** The digest of a presence's content, to tell a refresh from a change. */
function digestOf(presence: Presence): string {
  const holds = [...presence.holds.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([presence.endpoints, holds, presence.fingerprint ?? null]))
    .digest('hex');
}

/** Presence records and holdings in etcd, each under its device's lease. */
export class PresenceStore {
  readonly #etcd: Etcd3;
  readonly #ttlSeconds: number;
  readonly #renewer: LeaseRenewer;

  constructor(etcd: Etcd3, ttlSeconds: number) {
    this.#etcd = etcd;
    this.#ttlSeconds = ttlSeconds;
    this.#renewer = new LeaseRenewer(etcd);
  }

  /** How long a presence lasts without a refresh, in seconds. */
  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /**
   * Sets a device's presence (replacing what it said before) and renews its lease. The same
   * content again only renews the lease: no write, no watch traffic.
   */
  async put(presence: Presence): Promise<void> {
    const digest = digestOf(presence);
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.#record(presence.deviceId);
      let lease: string | undefined;
      if (current !== undefined && (await this.#renewer.renew(current.record.lease)) > 0) {
        if (current.record.digest === digest) return;
        lease = current.record.lease;
      }
      lease ??= await this.#grant();
      try {
        if (await this.#write(presence, digest, lease, current)) return;
      } catch (err) {
        if (!(err instanceof LeaseGoneError)) throw err;
      }
    }
    throw new PresenceConflictError(`the presence of device ${presence.deviceId} kept changing while it was written`);
  }

  /** Takes a device offline at once: its record and holdings go with its lease. */
  async remove(deviceId: string): Promise<boolean> {
    const current = await this.#record(deviceId);
    if (current === undefined) return false;
    await this.#etcd.leaseClient.leaseRevoke({ ID: current.record.lease }).catch((err: unknown) => {
      // Already expired: the keys are gone with it.
      if (!(err instanceof Error && /lease not found/i.test(err.message))) throw err;
    });
    return true;
  }

  /** The online devices holding something of `objectId`. */
  async holdings(objectId: string): Promise<Holding[]> {
    const res = await this.#etcd.getAll().prefix(holdingsPrefix(objectId)).exec();
    return res.kvs.map((kv) => JSON.parse(kv.value.toString('utf8')) as Holding);
  }

  /** Stops renewing (the process is exiting). */
  close(): void {
    this.#renewer.close();
  }

  async #record(deviceId: string): Promise<{ record: PresenceRecord; revision: number } | undefined> {
    const res = await this.#etcd.get(presenceKey(deviceId)).exec();
    const kv = res.kvs[0];
    return kv === undefined
      ? undefined
      : { record: JSON.parse(kv.value.toString('utf8')) as PresenceRecord, revision: Number(kv.mod_revision) };
  }

  async #grant(): Promise<string> {
    return (await this.#etcd.leaseClient.leaseGrant({ TTL: this.#ttlSeconds })).ID;
  }

  /**
   * Writes holdings and drops those of objects no longer held, in batches, then the record,
   * if it is still what was read (false otherwise: a concurrent update, read again).
   */
  async #write(
    presence: Presence,
    digest: string,
    lease: string,
    previous: { record: PresenceRecord; revision: number } | undefined,
  ): Promise<boolean> {
    const ops: IRequestOp[] = [];
    for (const [objectId, holds] of presence.holds) {
      const holding: Holding = {
        deviceId: presence.deviceId,
        userId: presence.userId,
        endpoints: presence.endpoints,
        ...(presence.fingerprint === undefined ? {} : { fingerprint: presence.fingerprint }),
        ...holds,
      };
      ops.push(await this.#etcd.put(holdingKey(objectId, presence.deviceId)).value(JSON.stringify(holding)).lease(lease).op());
    }
    for (const objectId of previous?.record.objects ?? []) {
      if (!presence.holds.has(objectId)) ops.push(await this.#etcd.delete().key(holdingKey(objectId, presence.deviceId)).op());
    }
    const record: PresenceRecord = {
      deviceId: presence.deviceId,
      userId: presence.userId,
      lease,
      endpoints: presence.endpoints,
      objects: [...presence.holds.keys()],
      digest,
      updatedAt: new Date().toISOString(),
    };
    const key = presenceKey(presence.deviceId);
    try {
      for (let i = 0; i < ops.length; i += maxOpsPerTxn) {
        await this.#etcd
          .if(key, 'Mod', '!=', -1)
          .then(...ops.slice(i, i + maxOpsPerTxn))
          .commit();
      }
      const written = await this.#etcd
        .if(key, 'Mod', '==', previous?.revision ?? 0)
        .then(this.#etcd.put(key).value(JSON.stringify(record)).lease(lease))
        .commit();
      if (!written.succeeded) return false;
    } catch (err) {
      if (err instanceof Error && /lease not found/i.test(err.message)) throw new LeaseGoneError(err.message, { cause: err });
      throw err;
    }
    // A lease granted afresh while the old one still lived (a renewal failed): drop the old keys.
    if (previous !== undefined && previous.record.lease !== lease) {
      await this.#etcd.leaseClient.leaseRevoke({ ID: previous.record.lease }).catch(() => undefined);
    }
    return true;
  }
}
