// Entry paths inside a mesh object: normalised to one canonical form, so that two spellings
// of a path never name two entries, and anything that could escape or confuse is refused.
import { MeshworkError } from '@meshwork/contract';

/** Longest path in UTF-8 bytes; etcd keys and clients on every OS stay comfortable below it. */
export const maxPathBytes = 1024;
/** Longest single name in UTF-8 bytes (the common file-system limit). */
export const maxSegmentBytes = 255;
/** Deepest nesting accepted. */
export const maxPathDepth = 64;

/** Raised for a path that cannot be accepted; `message` says why. */
export class InvalidPathError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_path', message, options);
  }
}

// C0 controls, DEL and C1 controls: invisible, and NUL ends strings in most file systems.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Normalises an entry path: Unicode NFC, no leading, trailing or doubled slashes, no "."
 * segments. Refuses ".." segments, control characters (NUL included) and paths past the limits.
 */
export function normalizeEntryPath(raw: string): string {
  if (controlCharacters.test(raw)) throw new InvalidPathError('path contains a control character');
  const segments: string[] = [];
  for (const segment of raw.normalize('NFC').split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw new InvalidPathError('path contains a ".." segment');
    if (Buffer.byteLength(segment) > maxSegmentBytes) throw new InvalidPathError(`a path segment is longer than ${maxSegmentBytes} bytes`);
    segments.push(segment);
  }
  if (segments.length === 0) throw new InvalidPathError('path is empty');
  if (segments.length > maxPathDepth) throw new InvalidPathError(`path is deeper than ${maxPathDepth} levels`);
  const path = segments.join('/');
  if (Buffer.byteLength(path) > maxPathBytes) throw new InvalidPathError(`path is longer than ${maxPathBytes} bytes`);
  return path;
}
