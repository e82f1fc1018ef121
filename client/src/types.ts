// The shapes of the public API's requests and answers (docs/api.md), as the client types them.
// They follow the wire format field for field, so a value read from the API can be sent back.

/** A member's role in a mesh object. */
export type Role = 'owner' | 'writer' | 'reader';

/** A user as `POST /v1/users` answers it (the token is shown once). */
export interface CreatedUser {
  id: string;
  name: string;
  createdAt: string;
  token: string;
}

/** A device as `POST /v1/devices` answers it (the token is shown once). */
export interface CreatedDevice {
  id: string;
  userId: string;
  name: string;
  createdAt: string;
  token: string;
}

/** One of the caller's user's devices, as `GET /v1/devices` lists it. */
export interface Device {
  id: string;
  name: string;
  createdAt: string;
  /** The device has presence now (it announced itself within the presence TTL). */
  online: boolean;
  /** The device is the caller. */
  current: boolean;
}

/** `POST /v1/me/token`: the user's new account token; the one that asked no longer works. */
export interface RotatedToken {
  id: string;
  token: string;
}

/** `GET /v1/me`: the caller's user, and its device when the token is a device token. */
export interface Me {
  id: string;
  name: string;
  createdAt: string;
  deviceId: string | null;
  /** Bytes of the blocks the user uploaded that are still stored, and its quota (null: unlimited). */
  storage: StorageUsage;
}

/** A user's storage: bytes in use and the quota (null: unlimited). */
export interface StorageUsage {
  usedBytes: number;
  quotaBytes: number | null;
}

/** A member of a mesh object. */
export interface Member {
  userId: string;
  role: Role;
}

/** A mesh object (shared folder) as the caller sees it. */
export interface MeshObject {
  id: string;
  name: string;
  owner: string;
  role: Role;
  members: Member[];
  cloudStorage: boolean;
  createdAt: string;
  version: string;
}

/** A block of content: its sha256 (hex) and size in bytes. */
export interface BlockRef {
  sha256: string;
  size: number;
}

/** A readable block, as `POST /v1/blocks/locations` answers it: where the partition redirects block downloads, the store's URL for it. */
export interface BlockLocation extends BlockRef {
  /** A presigned URL of the block at the store, itself the credential (send no other); absent: read it with `GET /v1/blocks/{sha256}`. */
  url?: string;
}

/** A block to upload and where (`POST /v1/blocks/uploads`, ADR 80). */
export interface BlockUpload extends BlockRef {
  /** A presigned PUT URL at the store, itself the credential (send no other); absent: `PUT /v1/blocks/{sha256}`. */
  url?: string;
  /** With `url`: the headers the PUT must send as they are (besides its `Content-Length`). */
  headers?: Record<string, string>;
}

/** The answer of `POST /v1/blocks/uploads`: the blocks the caller has not proved possession of, each once in the order asked. */
export interface BlockUploads {
  uploads: BlockUpload[];
  /** When the URLs expire (absent when there are none). */
  expiresAt?: string;
}

/** The answer of `POST /v1/blocks/uploaded`. */
export interface UploadConfirmations {
  /** The blocks the caller now possesses. */
  confirmed: BlockRef[];
  /** The others, each with why: `not_uploaded`, `busy` (being collected: upload again) or `insufficient_storage`. */
  unconfirmed: { sha256: string; code: 'not_uploaded' | 'busy' | 'insufficient_storage'; message: string }[];
}

/** The answer of `POST /v1/blocks/locations`. */
export interface BlockLocations {
  /** The blocks the caller may read, each once, in the order asked. */
  blocks: BlockLocation[];
  /** The others: not proved by the caller, or absent (the two are not told apart). */
  unreadable: string[];
  /** When the URLs expire (absent when there are none). */
  expiresAt?: string;
}

/** An entry (file or directory) of a mesh object; a tombstone has `deleted: true`. */
export interface Entry {
  path: string;
  kind: 'file' | 'directory';
  size: number;
  blocks: BlockRef[];
  contentHash: string;
  modifiedBy: string;
  mtime: string;
  deleted: boolean;
  version: string;
}

/** The body of an entry commit. */
export type EntryCommit = { kind: 'file'; blocks: BlockRef[]; mtime?: string } | { kind: 'directory'; mtime?: string };

/**
 * The precondition every write needs: `ifMatch` names the version (or ETag) being replaced,
 * `ifNoneMatch: '*'` creates and fails if the entry exists.
 */
export type WritePrecondition = { ifMatch: string } | { ifNoneMatch: '*' };

/** One page of `GET /v1/objects/{id}/entries`. */
export interface EntryPage {
  entries: Entry[];
  cursor: string;
  next: string | null;
}

/** One page of `GET /v1/objects/{id}/changes`. */
export interface ChangePage {
  changes: Entry[];
  cursor: string;
  next: string | null;
}

/** An object named by a notification: changed (with the caller's role) or removed. */
export interface NotifiedObject {
  id: string;
  role?: Role;
  removed?: boolean;
}

/** The answer of `GET /v1/notifications`. */
export interface Notifications {
  objects: NotifiedObject[];
  cursor: string;
}

/** What a device announces it holds: one version of one file, or an object synced through a cursor. */
export type Hold = { objectId: string; path: string; version: string } | { objectId: string; cursor: string };

/** The body of `PUT /v1/devices/{id}/presence`. */
export interface PresenceUpdate {
  endpoints: string[];
  /** The lowercase hex sha256 of the DER of the device's TLS certificate (peers pin it). */
  fingerprint?: string;
  holds: Hold[];
}

/** The answer of `PUT /v1/devices/{id}/presence`. */
export interface Presence {
  deviceId: string;
  endpoints: string[];
  objects: unknown;
  ttlSeconds: number;
}

/**
 * Where a file's content can be fetched from: an online device (the certificate fingerprint to
 * pin, and for a device caller the blocks grants to present to it, each naming up to 128 of the
 * file's blocks, with `grant` as well when one names them all: ADR 51, ADR 66), or the cloud.
 */
export type Source =
  | { kind: 'device'; deviceId: string; endpoints: string[]; fingerprint?: string; grant?: string; grants?: string[] }
  | { kind: 'cloud'; url: string };

/** The answer of `GET /v1/grants/keys`: the public keys grants are verified with. */
export interface GrantKeySet {
  keys: { kid: string; alg: 'Ed25519'; publicKey: string }[];
}

/** The answer of `GET /v1/objects/{id}/content/{path}/sources`. */
export interface Sources {
  path: string;
  version: string;
  sources: Source[];
}

/** One live replica of a partition in the slot map. */
export interface SlotMapReplica {
  partition: string;
  replica: string;
  slots: string;
  url: string;
  [field: string]: unknown;
}

/** The answer of `GET /v1/slots`. */
export interface SlotMap {
  partitions: SlotMapReplica[];
  /** Through the gateway: the slots each partition serves, by the owner keys where slots have them (ADR 34), in the `0-1023,2048` form. */
  served?: Record<string, string>;
}

/** One check of a health answer. */
export interface HealthCheck {
  name: string;
  ok: boolean;
  ms?: number;
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** The body of `/livez`, `/readyz` or `/healthz/deep` (a failing one also carries `error`). */
export interface HealthBody {
  status: string;
  checks?: HealthCheck[];
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** A health route's answer: `healthy` is false for its `503`, which is an answer, not a failed call. */
export interface HealthReport {
  healthy: boolean;
  status: number;
  body: HealthBody;
}

/** An object a device syncs that the caller may browse there (`GET /v1/devices/{id}/remote/files/`). */
export interface RemoteObject {
  objectId: string;
  name: string;
}

/** One name in a directory on a device, as the device's peer API lists it. */
export interface RemoteEntry {
  name: string;
  kind: 'file' | 'dir';
  /** Bytes (0 for a directory). */
  size: number;
  mtime: string;
}

/** What a path in an object on a device is: a directory with its entries, or a file with its size and ETag. */
export type RemoteListing =
  { kind: 'dir'; entries: RemoteEntry[] } | { kind: 'file'; size: number; etag: string | undefined; lastModified: string | undefined };
