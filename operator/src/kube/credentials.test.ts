import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeconfigError, loadInClusterCredentials, loadKubeconfigFile } from './credentials.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshwork-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, user: Record<string, unknown>, context = 'c'): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': context,
      clusters: [
        { name: 'k', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') } },
      ],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
    }),
  );
  return path;
}

describe('loadKubeconfigFile', () => {
  it('reads the server, the CA and a client certificate', () => {
    const creds = loadKubeconfigFile(
      kubeconfig('cert', {
        'client-certificate-data': Buffer.from('CERT').toString('base64'),
        'client-key-data': Buffer.from('KEY').toString('base64'),
      }),
    );
    expect(creds.server.href).toBe('https://127.0.0.1:6443/');
    expect(creds.ca?.toString()).toBe('CA');
    expect(creds.cert?.toString()).toBe('CERT');
    expect(creds.key?.toString()).toBe('KEY');
    expect(creds.token).toBeUndefined();
  });

  it.each([
    { case: 'an inline token', user: { token: 'abc' }, token: 'abc' },
    { case: 'a token file beside the kubeconfig', user: { tokenFile: 'token' }, token: 'from-file' },
  ])('reads $case', ({ user, token }) => {
    writeFileSync(join(dir, 'token'), 'from-file\n');
    expect(loadKubeconfigFile(kubeconfig('token', user)).token?.()).toBe(token);
  });

  it.each([
    { case: 'an exec plugin', user: { exec: { command: 'x' } }, context: 'c', message: 'does not support' },
    { case: 'a missing context', user: { token: 'x' }, context: 'nope', message: 'current-context "nope"' },
  ])('rejects $case with a message that names it', ({ user, context, message }) => {
    const path = kubeconfig('bad', user, context);
    expect(() => loadKubeconfigFile(path)).toThrow(KubeconfigError);
    expect(() => loadKubeconfigFile(path)).toThrow(message);
  });
});

describe('loadInClusterCredentials', () => {
  it('says so when not in a cluster', () => {
    expect(() => loadInClusterCredentials({})).toThrow('KUBERNETES_SERVICE_HOST');
  });
});
