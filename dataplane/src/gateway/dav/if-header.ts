// The `If` header of RFC 4918 (section 10.4): lists of conditions on state tokens (lock tokens)
// and entity tags, optionally tagged with the resource they apply to. Parsing and evaluation
// are pure: the caller says which tokens lock a resource and what its ETag is.

/** One condition of a list. */
export interface IfCondition {
  not: boolean;
  kind: 'token' | 'etag';
  value: string;
}

/** A list of conditions, for the request's resource (resource undefined) or a tagged one. */
export interface IfList {
  resource: string | undefined;
  conditions: IfCondition[];
}

/** A header that does not parse. */
export class IfHeaderError extends Error {}

/** Parses an `If` header into its lists. */
export function parseIfHeader(header: string): IfList[] {
  const lists: IfList[] = [];
  let i = 0;
  let resource: string | undefined;
  let tagged: boolean | undefined;
  const skip = (): void => {
    while (i < header.length && /\s/.test(header[i]!)) i++;
  };
  const until = (end: string): string => {
    const close = header.indexOf(end, i);
    if (close === -1) throw new IfHeaderError(`If: a ${end} is missing`);
    const value = header.slice(i, close);
    i = close + 1;
    return value;
  };
  for (skip(); i < header.length; skip()) {
    const c = header[i];
    if (c === '<') {
      if (tagged === false) throw new IfHeaderError('If: tagged and untagged lists are mixed');
      tagged = true;
      i++;
      resource = until('>');
      continue;
    }
    if (c !== '(') throw new IfHeaderError(`If: unexpected ${c}`);
    if (tagged === undefined) tagged = false;
    i++;
    const conditions: IfCondition[] = [];
    for (skip(); header[i] !== ')'; skip()) {
      if (i >= header.length) throw new IfHeaderError('If: a ) is missing');
      let not = false;
      if (header.slice(i, i + 3).toLowerCase() === 'not') {
        not = true;
        i += 3;
        skip();
      }
      if (header[i] === '<') {
        i++;
        conditions.push({ not, kind: 'token', value: until('>') });
      } else if (header[i] === '[') {
        i++;
        conditions.push({ not, kind: 'etag', value: until(']') });
      } else throw new IfHeaderError(`If: unexpected ${header[i] ?? 'end'} in a list`);
    }
    i++;
    if (conditions.length === 0) throw new IfHeaderError('If: an empty list');
    lists.push({ resource, conditions });
  }
  if (lists.length === 0) throw new IfHeaderError('If: no list');
  return lists;
}

/** What the evaluation needs to know of a resource. */
export interface IfResourceState {
  /** The tokens of the locks that cover the resource. */
  lockTokens: readonly string[];
  /** Its ETag (quoted), undefined when it does not exist. */
  etag: string | undefined;
}

/** The tokens a header submits (named without `Not`): those a request may use to pass locks. */
export function submittedTokens(lists: readonly IfList[]): Set<string> {
  const tokens = new Set<string>();
  for (const list of lists) for (const c of list.conditions) if (c.kind === 'token' && !c.not) tokens.add(c.value);
  return tokens;
}

const weakless = (etag: string): string => (etag.startsWith('W/') ? etag.slice(2) : etag);

/** Whether the header holds: some list whose every condition holds for its resource. */
export function evaluateIf(lists: readonly IfList[], stateOf: (resource: string | undefined) => IfResourceState): boolean {
  return lists.some((list) => {
    const state = stateOf(list.resource);
    return list.conditions.every((c) => {
      const holds =
        c.kind === 'token' ? state.lockTokens.includes(c.value) : state.etag !== undefined && weakless(c.value) === weakless(state.etag);
      return c.not ? !holds : holds;
    });
  });
}
