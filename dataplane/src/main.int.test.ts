// The process contract the operator's watchdog relies on: a classified exit code and a
// one-line termination message naming the cause.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { ManagedProcess } from '../../e2e/harness/process.ts';
import { makeReadOnly, makeWritable } from '../../e2e/harness/read-only.ts';
import { tempDirs } from '../../e2e/harness/temp-dirs.ts';
import { ExitCode } from '@meshwork/contract';

const stack = inject('stack');
const tempDir = tempDirs();
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function runMain(args: string[], env: Record<string, string>): Promise<{ code: number | null; message: string; log: string }> {
  const dir = tempDir('meshwork-main-');
  const terminationLog = join(dir, 'termination-log');
  const proc = ManagedProcess.start({
    component: 'dataplane',
    binary: process.execPath,
    args: [join(repoRoot, 'dataplane/src/main.ts'), ...args],
    logFile: join(dir, 'out.log'),
    cwd: repoRoot,
    env: { PATH: process.env.PATH, MESHWORK_TERMINATION_MESSAGE_PATH: terminationLog, ...env },
  });
  const exit = await proc.exited;
  let message = '';
  try {
    message = readFileSync(terminationLog, 'utf8');
  } catch {
    // No message written.
  }
  return { code: exit.code, message, log: proc.logTail() };
}

function validEnv(dir: string): Record<string, string> {
  const tokenFile = join(dir, 'admin');
  writeFileSync(tokenFile, 'an-admin-token-of-enough-length');
  return {
    MESHWORK_LISTEN: '127.0.0.1:0',
    MESHWORK_PARTITION: 'exit-codes',
    MESHWORK_SLOTS: '4000-4001',
    MESHWORK_ETCD_ENDPOINTS: stack.etcd.endpoint,
    MESHWORK_S3_ENDPOINT: stack.minio.endpoint,
    MESHWORK_S3_BUCKET: stack.minio.bucket,
    MESHWORK_S3_ACCESS_KEY: stack.minio.accessKey,
    MESHWORK_S3_SECRET_KEY: stack.minio.secretKey,
    MESHWORK_ADMIN_TOKEN_FILE: tokenFile,
  };
}

describe('dataplane main', () => {
  it.each([
    [[], 'usage'],
    [['janitor'], 'not "janitor"'],
  ])('exits with the usage code for role %j', async (args, message) => {
    const result = await runMain(args, {});
    expect(result.code).toBe(ExitCode.usage);
    expect(result.message).toContain(message);
  });

  it('starts the prober role, which names its missing configuration', async () => {
    const result = await runMain(['prober'], {});
    expect(result.code).toBe(ExitCode.configInvalid);
    expect(result.message).toContain('MESHWORK_PROBER_TARGET');
  });

  it('starts the gateway role, which names its missing configuration', async () => {
    const result = await runMain(['gateway'], {});
    expect(result.code).toBe(ExitCode.configInvalid);
    expect(result.message).toContain('MESHWORK_ETCD_ENDPOINTS');
  });

  it.each([
    ['MESHWORK_SLOTS', '0-9999'],
    ['MESHWORK_ETCD_ENDPOINTS', 'not-a-url'],
    ['MESHWORK_PARTITION', 'Not_A_Label'],
    ['MESHWORK_DATA_DIRS', 'data-0'],
  ])('exits with the configuration code and names %s', async (field, value) => {
    const dir = tempDir('meshwork-main-');
    const result = await runMain(['partition'], { ...validEnv(dir), [field]: value });
    expect(result.code).toBe(ExitCode.configInvalid);
    expect(result.message).toContain(field);
    expect(result.message.trim().split('\n')).toHaveLength(1);
    expect(result.log).toContain(field);
  });

  it('exits with the store code when etcd stays unreachable past the deadline', async () => {
    const dir = tempDir('meshwork-main-');
    const result = await runMain(['partition'], {
      ...validEnv(dir),
      MESHWORK_ETCD_ENDPOINTS: 'http://127.0.0.1:9',
      MESHWORK_STORE_DEADLINE_SECONDS: '2',
    });
    expect(result.code).toBe(ExitCode.storeUnreachable);
    expect(result.message).toContain('stores unreachable');
  });

  it('exits with the store code when the bucket does not exist', async () => {
    const dir = tempDir('meshwork-main-');
    const result = await runMain(['partition'], {
      ...validEnv(dir),
      MESHWORK_S3_BUCKET: 'no-such-bucket',
      MESHWORK_STORE_DEADLINE_SECONDS: '1',
    });
    expect(result.code).toBe(ExitCode.storeUnreachable);
    expect(result.message).toContain('bucket no-such-bucket does not exist');
  });

  it('exits with the volume-fault code and names a data directory that does not exist', async () => {
    const dir = tempDir('meshwork-main-');
    const missing = join(dir, 'data-1');
    const result = await runMain(['partition'], { ...validEnv(dir), MESHWORK_DATA_DIRS: `${dir},${missing}` });
    expect(result.code).toBe(ExitCode.volumeFault);
    expect(result.message.trim()).toBe(`volume fault: ${missing}: does not exist`);
  });

  it('exits with the volume-fault code when a data directory is read-only at start', async () => {
    const dir = tempDir('meshwork-main-');
    const data = tempDir('meshwork-data-');
    await makeReadOnly(data);
    try {
      const result = await runMain(['partition'], { ...validEnv(dir), MESHWORK_DATA_DIRS: data });
      expect(result.code).toBe(ExitCode.volumeFault);
      expect(result.message).toMatch(new RegExp(`^volume fault: ${data}: creating \\.meshwork failed: EROFS`));
    } finally {
      await makeWritable(data);
    }
  });
});
