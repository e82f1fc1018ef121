// Data volumes: each carries an identity (a random id and its creation time, so a recreated
// volume is recognisable) and a canary block written once; a check writes a probe file with
// random bytes, fsyncs it, reads it back and compares sha256, then reads the canary back and
// compares it with the checksum recorded when it was written, and finally compares the space
// left with a floor. Any failure is a VolumeFaultError: the volume cannot be trusted and the
// watchdog's remedy is to recreate it.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshworkError, volumeFaultMessage } from '@meshwork/contract';

/** A data volume that cannot be trusted; `message` is the termination message the watchdog recognises. */
export class VolumeFaultError extends MeshworkError {
  readonly dir: string;
  readonly reason: string;

  constructor(dir: string, reason: string, options?: { cause?: unknown }) {
    super('volume_fault', volumeFaultMessage(dir, reason), options);
    this.dir = dir;
    this.reason = reason;
  }
}

/** What identifies a volume across restarts of the processes that use it. */
export interface VolumeIdentity {
  id: string;
  createdAt: string;
  /** sha256 of the canary block written when the volume was first used. */
  canarySha256: string;
}

/** Where Meshwork keeps its own files on a volume. */
export const volumeMetaDir = '.meshwork';
/** The canary block, relative to the volume: corrupting it is how tests fake bit rot. */
export const canaryFile = `${volumeMetaDir}/canary`;
const identityFile = `${volumeMetaDir}/volume.json`;
const probeFile = `${volumeMetaDir}/probe`;
// Each probe is written here and renamed over the last one. Rewriting the probe in place would
// first free the old probe's blocks, so the write would pass on a volume that is full.
const probeNextFile = `${volumeMetaDir}/probe.next`;
const blockBytes = 4096;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function failure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes `data` to `path` and fsyncs it before closing. */
async function writeDurably(path: string, data: Buffer | string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function parseIdentity(text: string): VolumeIdentity | undefined {
  try {
    const value = JSON.parse(text) as Partial<VolumeIdentity>;
    if (
      typeof value.id === 'string' &&
      typeof value.createdAt === 'string' &&
      typeof value.canarySha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(value.canarySha256)
    ) {
      return { id: value.id, createdAt: value.createdAt, canarySha256: value.canarySha256 };
    }
  } catch {
    // Reported below as a corrupt identity.
  }
  return undefined;
}

/** What a volume check demands beyond sound I/O. */
export interface VolumeCheckLimits {
  /** A volume with fewer bytes available than this (to an unprivileged writer) is full: a fault. 0: no floor. */
  minFreeBytes: number;
}

const noLimits: VolumeCheckLimits = { minFreeBytes: 0 };

/** One data volume, opened and checked. */
export class DataVolume {
  readonly path: string;
  readonly identity: VolumeIdentity;
  /** Whether this process wrote the identity (the volume was new). */
  readonly created: boolean;
  readonly #limits: VolumeCheckLimits;

  private constructor(path: string, identity: VolumeIdentity, created: boolean, limits: VolumeCheckLimits) {
    this.path = path;
    this.identity = identity;
    this.created = created;
    this.#limits = limits;
  }

  /**
   * Opens a volume: it must be a writable directory; its identity is read, or written on first
   * use; then it is checked once. Throws VolumeFaultError saying what is wrong.
   */
  static async open(path: string, limits: VolumeCheckLimits = noLimits): Promise<DataVolume> {
    const step = async <T>(what: string, action: () => Promise<T>): Promise<T> => {
      try {
        return await action();
      } catch (err) {
        throw new VolumeFaultError(path, `${what} failed: ${failure(err)}`, { cause: err });
      }
    };
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new VolumeFaultError(path, err.code === 'ENOENT' ? 'does not exist' : `cannot be inspected: ${failure(err)}`, { cause: err });
    });
    if (!info.isDirectory()) throw new VolumeFaultError(path, 'is not a directory');
    // Not recursive: a recursive mkdir on a read-only mount reports ENOENT instead of EROFS.
    await step(`creating ${volumeMetaDir}`, () =>
      mkdir(join(path, volumeMetaDir)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      }),
    );
    const text = await readFile(join(path, identityFile), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new VolumeFaultError(path, `reading ${identityFile} failed: ${failure(err)}`, { cause: err });
    });
    let identity: VolumeIdentity;
    let created = false;
    if (text === undefined) {
      const canary = randomBytes(blockBytes);
      identity = { id: randomUUID(), createdAt: new Date().toISOString(), canarySha256: sha256(canary) };
      await step('writing the canary block', () => writeDurably(join(path, canaryFile), canary));
      // Written aside and renamed, so a crash never leaves a half-written identity behind.
      await step('writing the volume identity', async () => {
        await writeDurably(join(path, `${identityFile}.tmp`), `${JSON.stringify(identity)}\n`);
        await rename(join(path, `${identityFile}.tmp`), join(path, identityFile));
        await syncDirectory(join(path, volumeMetaDir));
      });
      created = true;
    } else {
      const parsed = parseIdentity(text);
      if (parsed === undefined) throw new VolumeFaultError(path, `${identityFile} is corrupt`);
      identity = parsed;
    }
    const volume = new DataVolume(path, identity, created, limits);
    await volume.check();
    return volume;
  }

  /**
   * Writes, fsyncs and reads back a probe, verifies the canary, and checks the space left
   * against the floor; throws VolumeFaultError.
   */
  async check(): Promise<void> {
    const probe = randomBytes(blockBytes);
    const nextPath = join(this.path, probeNextFile);
    const probePath = join(this.path, probeFile);
    try {
      await writeDurably(nextPath, probe);
      await rename(nextPath, probePath);
    } catch (err) {
      throw new VolumeFaultError(this.path, `writing the probe failed: ${failure(err)}`, { cause: err });
    }
    await this.#verify(probePath, 'probe', sha256(probe));
    await this.#verify(join(this.path, canaryFile), 'canary block', this.identity.canarySha256);
    await this.#checkFreeSpace();
  }

  async #checkFreeSpace(): Promise<void> {
    const floor = this.#limits.minFreeBytes;
    if (floor <= 0) return;
    let free: number;
    try {
      // bavail, not bfree: blocks reserved for root do not count, since the volume's other users may not write them.
      const info = await statfs(this.path, { bigint: true });
      free = Number(info.bavail * info.bsize);
    } catch (err) {
      throw new VolumeFaultError(this.path, `reading the free space failed: ${failure(err)}`, { cause: err });
    }
    if (free < floor) throw new VolumeFaultError(this.path, `full: ${free} bytes free, below the floor of ${floor} bytes`);
  }

  async #verify(path: string, what: string, expected: string): Promise<void> {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (err) {
      throw new VolumeFaultError(this.path, `reading the ${what} back failed: ${failure(err)}`, { cause: err });
    }
    const actual = sha256(data);
    if (actual !== expected) {
      throw new VolumeFaultError(this.path, `checksum mismatch: the ${what} reads back with sha256 ${actual}, written with ${expected}`);
    }
  }
}
