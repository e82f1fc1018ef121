// Where a WebDAV URL points: `/dav/` is the list of the caller's objects, `/dav/{name}/` an
// object's root, and what follows an entry path. Each segment is percent-decoded on its own;
// a segment that does not decode, `.`, `..`, an empty segment inside the path or a control
// character is refused, so no URL reaches an entry path the API would normalise differently.

/** The mount point of WebDAV on the gateway. */
export const davPrefix = '/dav';

/** A parsed WebDAV URL: the object's name (undefined: the root) and the entry path within it. */
export interface DavTarget {
  objectName: string | undefined;
  /** The entry path, '' for the object's root. */
  path: string;
  /** The URL named a collection (ended in `/`). */
  trailingSlash: boolean;
}

/** A URL that is not a WebDAV path we serve. */
export class DavPathError extends Error {}

/** Whether a request path belongs to WebDAV. */
export function isDavPath(pathname: string): boolean {
  return pathname === davPrefix || pathname.startsWith(`${davPrefix}/`);
}

// eslint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f]/;

/** Parses the path part of a request URL (no query, no fragment) under `/dav`. */
export function parseDavPath(pathname: string): DavTarget {
  if (!isDavPath(pathname)) throw new DavPathError(`${pathname} is not under ${davPrefix}/`);
  const rest = pathname.slice(davPrefix.length);
  const trailingSlash = rest === '' || rest.endsWith('/');
  const raw = rest.split('/').slice(1);
  if (trailingSlash) raw.pop();
  const segments = raw.map((s) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(s);
    } catch {
      throw new DavPathError(`the path segment ${s} does not percent-decode`);
    }
    if (decoded === '' || decoded === '.' || decoded === '..') throw new DavPathError(`the path has an empty, . or .. segment`);
    if (decoded.includes('/')) throw new DavPathError('a path segment holds an encoded /');
    if (controlCharacter.test(decoded)) throw new DavPathError('a path segment holds a control character');
    return decoded.normalize('NFC');
  });
  const [objectName, ...path] = segments;
  return { objectName, path: path.join('/'), trailingSlash };
}

/** The request URL's path without its query; a fragment (never sent by a client that means it) is refused. */
export function pathnameOf(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.includes('#')) throw new DavPathError('a request URL has no fragment');
  return path;
}

/** The href of a resource: each segment percent-encoded, collections ending in `/`. */
export function hrefOf(objectName: string | undefined, path: string, collection: boolean): string {
  if (objectName === undefined) return `${davPrefix}/`;
  const segments = [objectName, ...(path === '' ? [] : path.split('/'))].map(encodeSegment);
  return `${davPrefix}/${segments.join('/')}${collection ? '/' : ''}`;
}

function encodeSegment(segment: string): string {
  // Like encodeURIComponent, and also the characters some clients mishandle unencoded.
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The parent of an entry path ('' for a top-level entry). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

/** Whether `path` is `ancestor` or lies below it ('' is every path's ancestor). */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}/`);
}

/** `path` moved from below `from` to below `to`. */
export function rebase(path: string, from: string, to: string): string {
  if (path === from) return to;
  const rest = from === '' ? path : path.slice(from.length + 1);
  return to === '' ? rest : `${to}/${rest}`;
}

/** The Destination header's path: an absolute URL (of this host or not) or an absolute path. */
export function destinationPath(header: string, host: string | undefined): string {
  if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(header.replace(/[?#].*$/, ''))) throw new DavPathError('the Destination has a . or .. segment');
  let url: URL;
  try {
    url = new URL(header, 'http://destination.invalid');
  } catch {
    throw new DavPathError('the Destination header is not a URL');
  }
  if (url.host !== 'destination.invalid' && host !== undefined && url.host !== host) {
    throw new DavPathError('the Destination names another server');
  }
  return url.pathname;
}
