// Every byte a device sends through its relay is masked (RFC 6455) and unmasked by the service:
// `ws` does both with `bufferutil`'s native code where its prebuilt binary loads, and with its
// own JavaScript where it does not (ADR 72). These check that the binary loads as npm installs
// it here (its install script never runs) and that both paths agree byte for byte.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

interface Masker {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}

const require = createRequire(import.meta.url);
/** What `ws` loads: the native binding, or bufferutil's JavaScript when the binding does not load. */
const loaded = require('bufferutil') as Masker;
const fallback = require('bufferutil/fallback') as Masker;

describe('relay masking', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    'loads the native binding on linux-x64 without an install script',
    () => {
      expect(loaded).not.toBe(fallback);
    },
  );

  it.each([0, 1, 3, 4, 47, 48, 1021, 16_384 + 9, 1024 * 1024 + 3])('masks and unmasks %i bytes as the JavaScript does', (length) => {
    const source = randomBytes(length);
    const key = randomBytes(4);
    const offset = 14; // a frame header before the payload
    const native = Buffer.alloc(offset + length);
    const script = Buffer.alloc(offset + length);
    loaded.mask(source, key, native, offset, length);
    fallback.mask(source, key, script, offset, length);
    expect(native.equals(script)).toBe(true);
    if (length >= 4) expect(native.subarray(offset).equals(source)).toBe(key.readUInt32LE() === 0);
    const payload = native.subarray(offset);
    loaded.unmask(payload, key);
    expect(payload.equals(source)).toBe(true);
  });
});
