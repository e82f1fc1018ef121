// WebDAV's XML: request bodies (propfind, propertyupdate, lockinfo) parsed with namespaces
// resolved, and multistatus answers rendered. Parsing refuses any document type declaration
// before the parser sees it, and the parser (@rgrove/parse-xml) expands no entity but the five
// predefined ones and character references, so no body can grow while it is read.
import { parseXml, XmlElement, XmlText, XmlCdata, type XmlNode } from '@rgrove/parse-xml';

export const davNs = 'DAV:';
export const ocNs = 'http://owncloud.org/ns';

/** A body that is not the XML WebDAV asks for. */
export class DavXmlError extends Error {}

/** An element with its namespace resolved. */
export interface Node {
  ns: string;
  name: string;
  children: Node[];
  /** Text directly inside (concatenated). */
  text: string;
  /** The element's children as XML, their namespaces declared where used (a dead property's value). */
  inner: string;
}

/** A property name: namespace and local name. */
export interface PropName {
  ns: string;
  name: string;
}

export const propKey = (p: PropName): string => `{${p.ns}}${p.name}`;

/** Parses an XML body into a namespace-resolved tree; refuses DTDs and what does not parse. */
export function parseDavXml(text: string): Node {
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) throw new DavXmlError('document type declarations are not accepted');
  let root: XmlElement | null;
  try {
    root = parseXml(text).root;
  } catch (err) {
    throw new DavXmlError(`the body is not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (root === null) throw new DavXmlError('the body has no root element');
  return convert(root, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]));
}

function scopeOf(el: XmlElement, parent: Map<string, string>): Map<string, string> {
  let scope = parent;
  for (const [attr, value] of Object.entries(el.attributes)) {
    if (attr === 'xmlns' || attr.startsWith('xmlns:')) {
      if (attr !== 'xmlns' && value === '') throw new DavXmlError(`the prefix ${attr.slice(6)} is declared with an empty namespace`);
      if (scope === parent) scope = new Map(parent);
      scope.set(attr === 'xmlns' ? '' : attr.slice(6), value);
    }
  }
  return scope;
}

function resolve(qname: string, scope: Map<string, string>): { ns: string; name: string } {
  const colon = qname.indexOf(':');
  if (colon === -1) return { ns: scope.get('') ?? '', name: qname };
  const prefix = qname.slice(0, colon);
  const ns = scope.get(prefix);
  if (ns === undefined) throw new DavXmlError(`the namespace prefix ${prefix} is not declared`);
  return { ns, name: qname.slice(colon + 1) };
}

function convert(el: XmlElement, parentScope: Map<string, string>): Node {
  const scope = scopeOf(el, parentScope);
  const { ns, name } = resolve(el.name, scope);
  const children: Node[] = [];
  let text = '';
  let inner = '';
  for (const child of el.children as XmlNode[]) {
    if (child instanceof XmlElement) {
      const node = convert(child, scope);
      children.push(node);
      inner += serialise(child, scope);
    } else if (child instanceof XmlText || child instanceof XmlCdata) {
      text += child.text;
      inner += escapeText(child.text);
    }
  }
  return { ns, name, children, text, inner };
}

/** An element as XML with every namespace it uses declared on it. */
function serialise(el: XmlElement, parentScope: Map<string, string>): string {
  const scope = scopeOf(el, parentScope);
  const { ns, name } = resolve(el.name, scope);
  let attrs = ns === '' ? ' xmlns=""' : ` xmlns="${escapeAttr(ns)}"`;
  for (const [attr, value] of Object.entries(el.attributes)) {
    if (attr === 'xmlns' || attr.startsWith('xmlns:')) continue;
    const colon = attr.indexOf(':');
    if (colon === -1) attrs += ` ${attr}="${escapeAttr(value)}"`;
    else {
      const a = resolve(attr, scope);
      attrs += ` xmlns:a${attrs.length}="${escapeAttr(a.ns)}" a${attrs.length}:${a.name}="${escapeAttr(value)}"`;
    }
  }
  let body = '';
  for (const child of el.children as XmlNode[]) {
    if (child instanceof XmlElement) body += serialise(child, scope);
    else if (child instanceof XmlText || child instanceof XmlCdata) body += escapeText(child.text);
  }
  return body === '' ? `<${name}${attrs}/>` : `<${name}${attrs}>${body}</${name}>`;
}

export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttr(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}

const isDav = (n: Node, name: string): boolean => n.ns === davNs && n.name === name;

/** What a PROPFIND asks for. */
export type PropfindRequest = { kind: 'allprop'; include: PropName[] } | { kind: 'propname' } | { kind: 'prop'; props: PropName[] };

/** Parses a PROPFIND body; an empty body is allprop. */
export function parsePropfind(text: string): PropfindRequest {
  if (text.trim() === '') return { kind: 'allprop', include: [] };
  const root = parseDavXml(text);
  if (!isDav(root, 'propfind')) throw new DavXmlError('the body is not a DAV:propfind');
  const include = root.children.find((c) => isDav(c, 'include'))?.children.map(({ ns, name }) => ({ ns, name })) ?? [];
  for (const child of root.children) {
    if (isDav(child, 'allprop')) return { kind: 'allprop', include };
    if (isDav(child, 'propname')) return { kind: 'propname' };
    if (isDav(child, 'prop')) return { kind: 'prop', props: child.children.map(({ ns, name }) => ({ ns, name })) };
  }
  throw new DavXmlError('a DAV:propfind needs allprop, propname or prop');
}

/** One instruction of a PROPPATCH, in document order. */
export interface PropUpdate {
  op: 'set' | 'remove';
  prop: PropName;
  /** The value as XML (set only). */
  value: string;
}

/** Parses a PROPPATCH body. */
export function parseProppatch(text: string): PropUpdate[] {
  const root = parseDavXml(text);
  if (!isDav(root, 'propertyupdate')) throw new DavXmlError('the body is not a DAV:propertyupdate');
  const updates: PropUpdate[] = [];
  for (const child of root.children) {
    if (!isDav(child, 'set') && !isDav(child, 'remove')) continue;
    const prop = child.children.find((c) => isDav(c, 'prop'));
    if (prop === undefined) throw new DavXmlError(`DAV:${child.name} needs a DAV:prop`);
    for (const p of prop.children) updates.push({ op: child.name as 'set' | 'remove', prop: { ns: p.ns, name: p.name }, value: p.inner });
  }
  if (updates.length === 0) throw new DavXmlError('the DAV:propertyupdate changes nothing');
  return updates;
}

/** A LOCK request's body. */
export interface LockInfo {
  scope: 'exclusive' | 'shared';
  /** The owner element's content as XML ('' when none). */
  owner: string;
}

/** Parses a lockinfo body (a write lock, exclusive or shared). */
export function parseLockinfo(text: string): LockInfo {
  const root = parseDavXml(text);
  if (!isDav(root, 'lockinfo')) throw new DavXmlError('the body is not a DAV:lockinfo');
  const scope = root.children.find((c) => isDav(c, 'lockscope'))?.children[0];
  const type = root.children.find((c) => isDav(c, 'locktype'))?.children[0];
  if (scope === undefined || !(isDav(scope, 'exclusive') || isDav(scope, 'shared')))
    throw new DavXmlError('lockscope must be exclusive or shared');
  if (type === undefined || !isDav(type, 'write')) throw new DavXmlError('locktype must be write');
  const owner = root.children.find((c) => isDav(c, 'owner'));
  return { scope: scope.name as 'exclusive' | 'shared', owner: owner?.inner ?? '' };
}

/** A property's value in an answer: XML (already escaped) or undefined for an empty element. */
export interface PropValue {
  prop: PropName;
  xml: string | undefined;
}

/** One `DAV:response` of a multistatus: the href and its properties grouped by status. */
export interface DavResponse {
  href: string;
  propstats?: { status: number; props: PropValue[] }[];
  status?: number;
  error?: string;
}

const reasons: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  412: 'Precondition Failed',
  423: 'Locked',
  424: 'Failed Dependency',
  507: 'Insufficient Storage',
};

export const statusLine = (status: number): string => `HTTP/1.1 ${status} ${reasons[status] ?? ''}`.trimEnd();

function renderProp(p: PropValue): string {
  const { ns, name } = p.prop;
  if (ns === davNs) return p.xml === undefined || p.xml === '' ? `<d:${name}/>` : `<d:${name}>${p.xml}</d:${name}>`;
  if (ns === ocNs) return p.xml === undefined || p.xml === '' ? `<oc:${name}/>` : `<oc:${name}>${p.xml}</oc:${name}>`;
  const decl = ns === '' ? 'xmlns=""' : `xmlns:x="${escapeAttr(ns)}"`;
  const tag = ns === '' ? name : `x:${name}`;
  return p.xml === undefined || p.xml === '' ? `<${tag} ${decl}/>` : `<${tag} ${decl}>${p.xml}</${tag}>`;
}

/** Renders a `207 Multi-Status` body. */
export function renderMultistatus(responses: Iterable<DavResponse>): string {
  let out = '<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">';
  for (const r of responses) {
    out += `<d:response><d:href>${escapeText(r.href)}</d:href>`;
    for (const ps of r.propstats ?? []) {
      out += `<d:propstat><d:prop>${ps.props.map(renderProp).join('')}</d:prop><d:status>${statusLine(ps.status)}</d:status></d:propstat>`;
    }
    if (r.status !== undefined) out += `<d:status>${statusLine(r.status)}</d:status>`;
    if (r.error !== undefined) out += `<d:error><d:${r.error}/></d:error>`;
    out += '</d:response>';
  }
  return `${out}</d:multistatus>\n`;
}

/** A `DAV:error` body naming a precondition, with a human message. */
export function renderError(condition: string | undefined, message: string, href?: string): string {
  const cond =
    condition === undefined
      ? ''
      : href === undefined
        ? `<d:${condition}/>`
        : `<d:${condition}><d:href>${escapeText(href)}</d:href></d:${condition}>`;
  return `<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:mw="urn:meshwork:dav">${cond}<mw:message>${escapeText(message)}</mw:message></d:error>\n`;
}
