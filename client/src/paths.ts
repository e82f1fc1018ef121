// URL paths of the API. Every caller-supplied segment (ids, entry paths, hashes) is
// percent-encoded on its own, so a name with `?`, `#`, `%` or spaces reaches the server as the
// name it is, and a `/` inside an entry path stays a separator, as docs/api.md asks.

/** Percent-encodes each `/`-separated segment of an entry path. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Percent-encodes one path segment (an id, a hash). */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** A query string from the defined parameters, `?` included, or '' when there are none. */
export function query(params: Record<string, string | number | undefined>): string {
  const defined = Object.entries(params).filter((p): p is [string, string | number] => p[1] !== undefined);
  if (defined.length === 0) return '';
  return `?${defined.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`;
}

/** An ETag from a version or an ETag: quoted unless it already is (or is weak, or `*`). */
export function asEtag(versionOrEtag: string): string {
  if (versionOrEtag === '*' || versionOrEtag.startsWith('"') || versionOrEtag.startsWith('W/')) return versionOrEtag;
  return `"${versionOrEtag}"`;
}
