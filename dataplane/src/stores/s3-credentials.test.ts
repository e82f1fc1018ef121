// Credentials from files follow the files: a change is picked up after the check interval, or at
// once when S3 refused the old ones; credentials from values never change.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { S3Credentials, S3CredentialsError } from './s3-credentials.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A Secret volume's way of updating: write a new file and rename it over the old one. */
function write(dir: string, name: string, value: string): string {
  const path = join(dir, name);
  writeFileSync(`${path}.new`, `${value}\n`);
  renameSync(`${path}.new`, path);
  return path;
}

function secretDir(values: { access: string; secret: string; token?: string }): {
  dir: string;
  files: { accessKey: string; secretKey: string; sessionToken?: string };
} {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-s3-credentials-'));
  dirs.push(dir);
  const files = { accessKey: write(dir, 'access', values.access), secretKey: write(dir, 'secret', values.secret) };
  return { dir, files: values.token === undefined ? files : { ...files, sessionToken: write(dir, 'token', values.token) } };
}

describe('S3Credentials', () => {
  it('keeps fixed values and cannot refresh them', async () => {
    const credentials = new S3Credentials({ accessKey: 'a', secretKey: 's', sessionToken: 't' });
    expect(await credentials.current()).toEqual({ accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' });
    expect(credentials.rotates).toBe(false);
    expect(await credentials.refresh()).toBe(false);
  });

  it('re-reads changed files once the check interval has passed', async () => {
    const { dir, files } = secretDir({ access: 'a1', secret: 's1', token: 't1' });
    const credentials = new S3Credentials({ accessKey: 'a1', secretKey: 's1', sessionToken: 't1', files, checkIntervalMs: 1000 });
    const t0 = Date.now();
    expect(await credentials.current(t0)).toEqual({ accessKeyId: 'a1', secretAccessKey: 's1', sessionToken: 't1' });
    write(dir, 'access', 'a2');
    write(dir, 'secret', 's2');
    write(dir, 'token', 't2');
    // Within the interval the files are not looked at.
    expect((await credentials.current(t0 + 10)).accessKeyId).toBe('a1');
    expect(await credentials.current(Date.now() + 1000)).toEqual({ accessKeyId: 'a2', secretAccessKey: 's2', sessionToken: 't2' });
  });

  it('re-reads at once on refresh, and says whether anything changed', async () => {
    const { dir, files } = secretDir({ access: 'a1', secret: 's1' });
    const credentials = new S3Credentials({ accessKey: 'a1', secretKey: 's1', files, checkIntervalMs: 60_000 });
    expect((await credentials.current()).accessKeyId).toBe('a1');
    expect(await credentials.refresh()).toBe(false);
    const generation = credentials.generation;
    write(dir, 'secret', 's2');
    expect(await credentials.refresh()).toBe(true);
    expect(await credentials.current()).toEqual({ accessKeyId: 'a1', secretAccessKey: 's2' });
    expect(credentials.generation).toBe(generation + 1);
    // Rewritten with the same value: a new file, but nothing changed.
    write(dir, 'secret', 's2');
    expect(await credentials.refresh()).toBe(false);
    expect(credentials.generation).toBe(generation + 1);
  });

  it('takes the values the configuration read, then follows only the parts that come from files', async () => {
    const { dir, files } = secretDir({ access: 'a1', secret: 's1' });
    const credentials = new S3Credentials({
      accessKey: 'fixed',
      secretKey: 's1',
      files: { secretKey: files.secretKey },
      checkIntervalMs: 0,
    });
    write(dir, 'secret', 's2');
    expect(await credentials.current()).toEqual({ accessKeyId: 'fixed', secretAccessKey: 's2' });
  });

  it('fails with a typed error naming the file when it vanished or is empty', async () => {
    const { dir, files } = secretDir({ access: 'a1', secret: 's1' });
    const credentials = new S3Credentials({ accessKey: 'a1', secretKey: 's1', files, checkIntervalMs: 0 });
    write(dir, 'secret', '  ');
    await expect(credentials.current()).rejects.toThrow(new S3CredentialsError(`S3 credentials file ${files.secretKey} is empty`));
    rmSync(files.secretKey);
    await expect(credentials.refresh()).rejects.toBeInstanceOf(S3CredentialsError);
    await expect(credentials.refresh()).rejects.toThrow(files.secretKey);
  });
});
