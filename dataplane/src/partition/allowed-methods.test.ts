import { describe, expect, it } from 'vitest';
import { allowedMethods, compileRoutePath, routeTable, type RouteListing } from './allowed-methods.ts';

describe('compileRoutePath', () => {
  it.each([
    ['/v1/objects/:id', '/v1/objects/abc', true],
    ['/v1/objects/:id', '/v1/objects/abc/', true],
    ['/v1/objects/:id', '/V1/OBJECTS/abc', true],
    ['/v1/objects/:id', '/v1/objects/', false],
    ['/v1/objects/:id', '/v1/objects/a/b', false],
    ['/v1/objects/:id/entries/*path', '/v1/objects/a/entries/x/y.txt', true],
    ['/v1/objects/:id/entries/*path', '/v1/objects/a/entries/', false],
    ['/v1/blocks/missing', '/v1/blocksXmissing', false],
    ['/healthz/deep', '/healthz/deep', true],
  ])('%s against %s: %s', (route, path, matches) => {
    expect(compileRoutePath(route).test(path)).toBe(matches);
  });
});

describe('allowedMethods', () => {
  const child: RouteListing[] = [
    { path: '/v1/objects/:id', methods: ['GET', 'HEAD'], router: undefined },
    { path: '/v1/objects/:id', methods: ['PATCH'], router: undefined },
    { path: '/v1/objects/:id/entries/*path', methods: ['PUT'], router: undefined },
  ];
  const table = routeTable([
    { path: '/', methods: undefined, router: { listRoutes: () => child } },
    { path: '/v1/notifications', methods: ['GET', 'HEAD'], router: undefined },
    { path: /regexp/, methods: ['GET'], router: undefined },
  ]);

  it.each([
    ['/v1/objects/abc', ['GET', 'HEAD', 'PATCH']],
    ['/v1/objects/abc/entries/a/b', ['PUT']],
    ['/v1/notifications', ['GET', 'HEAD']],
    ['/v1/nowhere', []],
  ])('%s takes %j', (path, methods) => {
    expect(allowedMethods(table, path)).toEqual(methods);
  });
});
