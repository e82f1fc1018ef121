// The web UI's mount on the gateway (docs/web.md, ADR 43): the built assets of web/ served from
// memory at `/` (index.html) and `/assets/*` (hashed names, `Cache-Control: immutable`), every
// answer with a strict Content-Security-Policy and the usual security headers. The UI talks to
// the API on the same origin (`/v1/`), which the gateway routes as for any client; nothing here
// authenticates. Kept apart from the request path in server.ts behind one `isWebPath` check.
import { readdir, readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError } from '@meshwork/contract';
import { sendError, type GatewayResponse } from './gateway.ts';

/** Where the built UI is by default: web/dist beside the product sources (the image keeps that layout). */
export const defaultWebDir = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** The policy of every UI answer: the bundle's own scripts, styles and images, the API on the same origin, nothing else. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The security headers of every UI answer; `tls` adds Strict-Transport-Security. */
export function securityHeaders(tls: boolean): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    ...(tls ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
  immutable: boolean;
}

/** Whether the web mount answers `pathname`: `/` and `/assets/...` (the API and operations paths are elsewhere). */
export function isWebPath(pathname: string): boolean {
  return pathname === '/' || pathname === '/index.html' || pathname.startsWith('/assets/');
}

/** The built UI, read once at start. */
export class WebAssets {
  readonly #assets: Map<string, Asset>;
  readonly #tls: boolean;

  private constructor(assets: Map<string, Asset>, tls: boolean) {
    this.#assets = assets;
    this.#tls = tls;
  }

  /** Reads index.html and assets/ from `dir`; undefined when the UI was not built there. */
  static async load(dir: string, tls: boolean): Promise<WebAssets | undefined> {
    let index: Buffer;
    try {
      index = await readFile(join(dir, 'index.html'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const assets = new Map<string, Asset>([['/', { body: index, type: contentTypes['.html']!, immutable: false }]]);
    let names: string[] = [];
    try {
      names = await readdir(join(dir, 'assets'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const name of names) {
      const type = contentTypes[extname(name)];
      if (type === undefined) continue;
      assets.set(`/assets/${name}`, { body: await readFile(join(dir, 'assets', name)), type, immutable: true });
    }
    return new WebAssets(assets, tls);
  }

  /** How many files are served (index.html included). */
  get size(): number {
    return this.#assets.size;
  }

  /** Answers a web path. */
  serve(method: string, pathname: string, res: GatewayResponse): void {
    const asset = this.#assets.get(pathname === '/index.html' ? '/' : pathname);
    if (asset === undefined) {
      sendError(res, new ApiError('not_found', `no such file: ${pathname}`));
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, new ApiError('method_not_allowed', `${method} is not allowed on ${pathname}`, { headers: { Allow: 'GET, HEAD' } }));
      return;
    }
    (res as ServerResponse).writeHead(200, {
      ...securityHeaders(this.#tls),
      'content-type': asset.type,
      'content-length': String(asset.body.length),
      // Hashed names never change content; index.html names the current ones, so it is asked again each time.
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (method === 'HEAD') res.end();
    else res.end(asset.body);
  }
}
