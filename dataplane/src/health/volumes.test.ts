import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../../../e2e/harness/temp-dirs.ts';
import { canaryFile, DataVolume, VolumeFaultError } from './volumes.ts';

const tempDir = tempDirs();

function freshDir(): string {
  return tempDir('meshwork-volume-');
}

/** Flips the bits of `length` bytes at `offset`, as a failing disk (or the fault injector) would. */
async function corrupt(path: string, offset = 0, length = 16): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    for (let i = 0; i < bytesRead; i++) buffer[i] = buffer[i]! ^ 0xff;
    await handle.write(buffer, 0, bytesRead, offset);
  } finally {
    await handle.close();
  }
}

async function faultOf(action: Promise<unknown>): Promise<VolumeFaultError> {
  try {
    await action;
  } catch (err) {
    expect(err).toBeInstanceOf(VolumeFaultError);
    return err as VolumeFaultError;
  }
  return expect.unreachable('no volume fault was raised');
}

describe('DataVolume', () => {
  it('writes an identity on first use and finds the same one afterwards', async () => {
    const dir = freshDir();
    const first = await DataVolume.open(dir);
    expect(first.created).toBe(true);
    expect(first.identity.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(first.identity.createdAt)).not.toBeNaN();
    const again = await DataVolume.open(dir);
    expect(again.created).toBe(false);
    expect(again.identity).toEqual(first.identity);
    const other = await DataVolume.open(freshDir());
    expect(other.identity.id).not.toBe(first.identity.id);
  });

  it('passes its check while the volume is sound, and writes a new probe each time', async () => {
    const dir = freshDir();
    const volume = await DataVolume.open(dir);
    const probe = join(dir, '.meshwork/probe');
    const before = readFileSync(probe);
    await volume.check();
    expect(readFileSync(probe).equals(before)).toBe(false);
  });

  it('reports a volume with less space available than the floor as full', async () => {
    const dir = freshDir();
    await DataVolume.open(dir, { minFreeBytes: 1 });
    const fault = await faultOf(DataVolume.open(dir, { minFreeBytes: Number.MAX_SAFE_INTEGER }));
    expect(fault.message).toMatch(
      new RegExp(`^volume fault: ${dir}: full: \\d+ bytes free, below the floor of ${Number.MAX_SAFE_INTEGER} bytes$`),
    );
  });

  it('reports a canary block that reads back wrong as a checksum mismatch', async () => {
    const dir = freshDir();
    const volume = await DataVolume.open(dir);
    await corrupt(join(dir, canaryFile), 100, 2);
    const fault = await faultOf(volume.check());
    expect(fault.dir).toBe(dir);
    expect(fault.message).toMatch(new RegExp(`^volume fault: ${dir}: checksum mismatch: the canary block reads back`));
    // A restart does not paper over it: opening the volume checks it too.
    await faultOf(DataVolume.open(dir));
  });

  it.each([
    ['a missing directory', (dir: string) => join(dir, 'absent'), 'does not exist'],
    [
      'a file instead of a directory',
      (dir: string) => {
        writeFileSync(join(dir, 'file'), 'x');
        return join(dir, 'file');
      },
      'is not a directory',
    ],
  ])('refuses %s', async (_what, prepare, reason) => {
    const path = prepare(freshDir());
    const fault = await faultOf(DataVolume.open(path));
    expect(fault.message).toBe(`volume fault: ${path}: ${reason}`);
  });

  it('refuses a volume whose identity file is corrupt', async () => {
    const dir = freshDir();
    await DataVolume.open(dir);
    writeFileSync(join(dir, '.meshwork/volume.json'), '{"id": 3');
    const fault = await faultOf(DataVolume.open(dir));
    expect(fault.message).toBe(`volume fault: ${dir}: .meshwork/volume.json is corrupt`);
  });
});
