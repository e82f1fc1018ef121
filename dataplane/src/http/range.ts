// The Range request header (RFC 9110 §14) for byte ranges of a representation of known size.

/** An inclusive byte range that lies inside the representation. */
export interface ByteRange {
  start: number;
  end: number;
}

/** What a Range header asks for, resolved against the representation's size. */
export type RangeRequest =
  /** No usable Range header (absent, not bytes, malformed, or several ranges): send it all. */
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  /** Syntactically fine but nothing overlaps the representation: 416. */
  | { kind: 'unsatisfiable' };

/**
 * Resolves a Range header against `size`. Multiple ranges are answered with the full
 * representation, which RFC 9110 allows, so clients get one simple body shape.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  const match = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!match) return { kind: 'full' };
  const specs = match[1]!.split(',').map((s) => s.trim());
  if (specs.length !== 1) return { kind: 'full' };
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' };
  if (spec[1] === '') {
    // Suffix range: the last N bytes.
    const length = Number(spec[2]);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - length), end: size - 1 } };
  }
  const start = Number(spec[1]);
  const end = spec[2] === '' ? size - 1 : Number(spec[2]);
  if (spec[2] !== '' && end < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(end, size - 1) } };
}

/** The Content-Range value for a 206 response. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}
