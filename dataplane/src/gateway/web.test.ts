// The web mount: which paths it answers, and what it answers from a built directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../../../e2e/harness/temp-dirs.ts';
import { contentSecurityPolicy, isWebPath, WebAssets } from './web.ts';
import type { GatewayResponse } from './gateway.ts';

/** A response that records what was written. */
function recorder(): { res: GatewayResponse; answer: { status: number; headers: Record<string, string>; body: string } } {
  const answer = { status: 0, headers: {} as Record<string, string>, body: '' };
  const res = {
    headersSent: false,
    writeHead(status: number, headers: Record<string, string>) {
      answer.status = status;
      answer.headers = { ...answer.headers, ...headers };
      return this;
    },
    setHeader(name: string, value: string) {
      answer.headers[name.toLowerCase()] = value;
    },
    end(body?: string | Buffer) {
      answer.body = body === undefined ? '' : body.toString();
    },
  };
  return { res: res as unknown as ServerResponse, answer };
}

const tempDir = tempDirs();

function built(): string {
  const dir = tempDir('meshwork-web-test-');
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'assets', 'notes.txt'), 'not a served type');
  return dir;
}

describe('the web mount', () => {
  it.each<[string, boolean]>([
    ['/', true],
    ['/index.html', true],
    ['/assets/index-abc123.js', true],
    ['/v1/me', false],
    ['/livez', false],
    ['/dav/x', false],
    ['/favicon.ico', false],
  ])('answers %s: %s', (path, expected) => {
    expect(isWebPath(path)).toBe(expected);
  });

  it('serves index.html to be revalidated and hashed assets immutable, with the policy', async () => {
    const web = (await WebAssets.load(built(), true))!;
    expect(web.size).toBe(2);
    const index = recorder();
    web.serve('GET', '/', index.res);
    expect(index.answer).toMatchObject({ status: 200, body: '<!doctype html><title>t</title>' });
    expect(index.answer.headers).toMatchObject({
      'cache-control': 'no-cache',
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': contentSecurityPolicy,
      'x-frame-options': 'DENY',
      'strict-transport-security': 'max-age=31536000',
    });
    const asset = recorder();
    web.serve('HEAD', '/assets/index-abc123.js', asset.res);
    expect(asset.answer).toMatchObject({ status: 200, body: '' });
    expect(asset.answer.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(asset.answer.headers['content-length']).toBe('14');
  });

  it.each<[string, string, number]>([
    ['GET', '/assets/notes.txt', 404],
    ['GET', '/assets/missing.js', 404],
    ['POST', '/', 405],
  ])('%s %s is %i', async (method, path, status) => {
    const web = (await WebAssets.load(built(), false))!;
    const { res, answer } = recorder();
    web.serve(method, path, res);
    expect(answer.status).toBe(status);
  });

  it('is absent when nothing was built', async () => {
    expect(await WebAssets.load(join(tmpdir(), 'meshwork-no-such-web-dir'), false)).toBeUndefined();
  });
});
