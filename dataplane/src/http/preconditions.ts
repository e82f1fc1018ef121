// Entity tags and the conditional request headers (RFC 9110 §8.8.3, §13).

/** A strong entity tag for an opaque value: "value". */
export function strongEtag(value: string): string {
  return `"${value}"`;
}

/** The entity tags listed in an If-Match / If-None-Match header; "*" is returned as ["*"]. */
export function parseEtagList(header: string | undefined): string[] {
  if (header === undefined) return [];
  const trimmed = header.trim();
  if (trimmed === '*') return ['*'];
  const tags: string[] = [];
  for (const match of trimmed.matchAll(/(W\/)?"([^"]*)"/g)) tags.push(`${match[1] ?? ''}"${match[2]}"`);
  return tags;
}

/** Whether If-None-Match matches `etag` by weak comparison (a 304 for GET and HEAD). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  const tags = parseEtagList(header);
  const opaque = (t: string): string => (t.startsWith('W/') ? t.slice(2) : t);
  return tags.includes('*') || tags.some((t) => opaque(t) === opaque(etag));
}

/** What a write's preconditions demand of the current version of the target. */
export type WritePrecondition =
  /** If-None-Match: * — the target must not exist. */
  | { kind: 'create' }
  /** If-Match: "v" — the target must exist at exactly one of these versions (strong comparison). */
  | { kind: 'match'; versions: string[] }
  /** If-Match: * — the target must exist. */
  | { kind: 'exists' }
  | { kind: 'none' };

/** Reads the write precondition from If-Match / If-None-Match; versions are the etag contents. */
export function parseWritePrecondition(ifMatch: string | undefined, ifNoneMatch: string | undefined): WritePrecondition {
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*') return { kind: 'create' };
  if (ifMatch !== undefined) {
    const tags = parseEtagList(ifMatch);
    if (tags.includes('*')) return { kind: 'exists' };
    return { kind: 'match', versions: tags.filter((t) => !t.startsWith('W/')).map((t) => t.slice(1, -1)) };
  }
  return { kind: 'none' };
}

/** Whether a write precondition holds for a target whose current version is `current` (undefined: absent). */
export function preconditionHolds(precondition: WritePrecondition, current: string | undefined): boolean {
  switch (precondition.kind) {
    case 'none':
      return true;
    case 'create':
      return current === undefined;
    case 'exists':
      return current !== undefined;
    case 'match':
      return current !== undefined && precondition.versions.includes(current);
  }
}
