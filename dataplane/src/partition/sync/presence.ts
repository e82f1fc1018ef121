// Presence and peers as the service sees them: a device's announcement (where it can be
// reached, which versions it holds) checked against its user's memberships and kept under an
// etcd lease, and the sources of a file: online member devices holding the version, and the
// cloud when the object keeps content there (it keeps only the current version).
import { ApiError } from '@meshwork/contract';
import { z } from 'zod';
import { InvalidPathError, normalizeEntryPath } from '../../paths.ts';
import type { MetadataStore, ObjectRecord, Versioned } from '../../stores/metadata-store.ts';
import {
  holdsVersion,
  PresenceConflictError,
  type Holding,
  type ObjectHolds,
  type Presence,
  type PresenceStore,
} from '../../stores/presence-store.ts';
import { ValidationError } from '../schemas.ts';

/** Endpoints a device may announce. */
export const maxEndpoints = 8;
/** Holds one presence may list (each a file version, or a whole object up to a cursor). */
export const maxHolds = 1000;

const objectId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an object id');
const version = z.string().regex(/^[1-9]\d{0,14}$/, 'must be a version (a positive integer in a string)');
const endpoint = z
  .string()
  .max(512)
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }));

/** The body of `PUT /v1/devices/{id}/presence`. */
export const presenceBody = z.strictObject({
  endpoints: z.array(endpoint).max(maxEndpoints),
  /** The lowercase hex sha256 of the DER of the device's TLS certificate. */
  fingerprint: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be the lower-case hex sha256 of the certificate')
    .optional(),
  holds: z
    .array(
      z.union([
        z.strictObject({ objectId, path: z.string().min(1).max(1024), version }),
        // Synced through a cursor: holds every entry of the object whose version is at most it.
        z.strictObject({ objectId, cursor: version }),
      ]),
    )
    .max(maxHolds)
    .default([]),
});

/** A validated presence announcement. */
export type PresenceBody = z.infer<typeof presenceBody>;

/** An entry path as a URL path: each segment percent-encoded. */
function encodeEntryPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The holds of a presence body grouped by object, with paths normalised. */
export function groupHolds(holds: PresenceBody['holds']): Map<string, ObjectHolds> {
  const byObject = new Map<string, ObjectHolds>();
  holds.forEach((hold, i) => {
    let entry = byObject.get(hold.objectId);
    if (entry === undefined) {
      entry = { versions: [] };
      byObject.set(hold.objectId, entry);
    }
    if ('cursor' in hold) {
      if (entry.cursor === undefined || Number(hold.cursor) > Number(entry.cursor)) entry.cursor = hold.cursor;
      return;
    }
    let path: string;
    try {
      path = normalizeEntryPath(hold.path);
    } catch (err) {
      if (err instanceof InvalidPathError) throw new ValidationError(`body.holds.${i}.path`, err.message);
      throw err;
    }
    entry.versions.push({ path, version: hold.version });
  });
  return byObject;
}

/** What presence needs: the user's memberships, and the presence store. */
export interface PresenceDeps {
  metadata: Pick<MetadataStore, 'listMemberships'>;
  presence: Pick<PresenceStore, 'put' | 'holdings'>;
}

/** Keeps a device's announcement; 404 for a hold in an object its user is not a member of, 409 when it kept changing. */
export async function announcePresence(
  deps: PresenceDeps,
  device: { deviceId: string; userId: string },
  body: PresenceBody,
): Promise<{ objects: number }> {
  const holds = groupHolds(body.holds);
  // The membership index is in the user's slot, which is this partition's; the sources
  // route checks again against each object's record, the authority.
  const memberOf = new Set((await deps.metadata.listMemberships(device.userId)).map((m) => m.objectId));
  body.holds.forEach((hold, i) => {
    if (!memberOf.has(hold.objectId))
      throw new ApiError('not_found', `object ${hold.objectId} not found`, { details: { field: `body.holds.${i}.objectId` } });
  });
  const presence: Presence = {
    deviceId: device.deviceId,
    userId: device.userId,
    endpoints: body.endpoints,
    ...(body.fingerprint === undefined ? {} : { fingerprint: body.fingerprint }),
    holds,
  };
  try {
    await deps.presence.put(presence);
  } catch (err) {
    if (err instanceof PresenceConflictError) throw new ApiError('conflict', `${err.message}; retry`, { cause: err });
    throw err;
  }
  return { objects: holds.size };
}

/**
 * One place a file version can be fetched from: a device (with the certificate fingerprint to
 * pin, and for a device caller the grants to present, each naming up to 128 of the file's blocks;
 * `grant` as well when one covers them all), or the cloud.
 */
export type Source =
  | { kind: 'device'; deviceId: string; endpoints: string[]; fingerprint?: string; grant?: string; grants?: string[] }
  | { kind: 'cloud'; url: string };

/**
 * The sources of version `wanted` of the file at `path`, current at `current`, for a caller other
 * than device `self`. `grantFor` (given for a device caller) issues the grants each holder is listed with.
 */
export function sourcesOf(
  object: Versioned<ObjectRecord>,
  holdings: readonly Holding[],
  file: { path: string; current: string; wanted: string },
  self: string | undefined,
  grantFor?: (holder: string) => string[] | undefined,
): Source[] {
  const { path, current, wanted } = file;
  const devices: Source[] = holdings
    .filter((h) => h.deviceId !== self && object.value.members[h.userId] !== undefined && holdsVersion(h, path, wanted))
    .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
    .map((h) => {
      const grants = grantFor?.(h.deviceId);
      return {
        kind: 'device',
        deviceId: h.deviceId,
        endpoints: h.endpoints,
        ...(h.fingerprint === undefined ? {} : { fingerprint: h.fingerprint }),
        ...(grants?.length === 1 ? { grant: grants[0] } : {}),
        ...(grants === undefined ? {} : { grants }),
      };
    });
  // The cloud keeps only the current version, and nothing of a peer-to-peer only object.
  const url = `/v1/objects/${object.value.id}/content/${encodeEntryPath(path)}`;
  const cloud: Source[] = object.value.cloudStorage && wanted === current ? [{ kind: 'cloud', url }] : [];
  return [...devices, ...cloud];
}
