// Which methods a path takes, for `405 method_not_allowed` with `Allow` (RFC 9110 §15.5.6): a
// request that matched no route is 405 when its path is a route's under another method, and 404
// only when no route has that path. The table is built from the app's own routes (the router's
// public listRoutes), so it cannot drift from them; matching follows express's defaults (case
// insensitive, an optional trailing slash).

/** A route as the router lists it: a path pattern and its methods, or a mounted router. */
export interface RouteListing {
  path: string | RegExp;
  methods: string[] | undefined;
  router: { listRoutes(): RouteListing[] } | undefined;
}

/** One path pattern and the methods it takes. */
export interface AllowedRoute {
  pattern: RegExp;
  methods: readonly string[];
}

const escape = (text: string): string => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** The regular expression of an express 5 path (`:name` one segment, `*name` one or more). */
export function compileRoutePath(path: string): RegExp {
  let source = '';
  for (const part of path.split(/(:[A-Za-z_]\w*|\*[A-Za-z_]\w*)/)) {
    if (part.startsWith(':')) source += '[^/]+';
    else if (part.startsWith('*')) source += '.+';
    else source += escape(part);
  }
  return new RegExp(`^${source}/?$`, 'i');
}

/** The routes of a router and of the routers mounted in it (at its root), with their methods. */
export function routeTable(listings: readonly RouteListing[]): AllowedRoute[] {
  const table: AllowedRoute[] = [];
  for (const listing of listings) {
    if (listing.router !== undefined && (listing.path === '/' || listing.path === ''))
      table.push(...routeTable(listing.router.listRoutes()));
    else if (listing.methods !== undefined && typeof listing.path === 'string') {
      table.push({ pattern: compileRoutePath(listing.path), methods: listing.methods });
    }
  }
  return table;
}

/** The methods `path` takes, sorted (empty when no route has that path). */
export function allowedMethods(table: readonly AllowedRoute[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of table) if (route.pattern.test(path)) for (const method of route.methods) if (method !== '*') methods.add(method);
  return [...methods].sort();
}
