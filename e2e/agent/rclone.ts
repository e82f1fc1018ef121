// rclone against a MinIO server: the baseline the agent benchmark compares a large file's
// transfer against (`rclone copy` up to the bucket, then down into another directory).
// rclone is the pinned build in bin/ (`make tools`, tools/rclone); the remote is configured by
// environment only (RCLONE_CONFIG_<NAME>_*), with an empty config file so nothing outside the
// temp dir is read.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinary } from '../harness/binaries.ts';

/** The remote's name in rclone paths: `benchminio:bucket/key`. */
export const rcloneRemote = 'benchminio';

/** The pinned rclone (bin/rclone), or an error telling to run `make tools`. */
export function rcloneBinary(): string {
  return requireBinary('rclone');
}

/**
 * What a WebDAV remote `name` for Meshwork needs besides its URL and credentials (docs/webdav.md):
 * vendor owncloud (modification times and checksums), and no pacing between calls (rclone's
 * WebDAV default spaces calls 10 ms apart across all transfers).
 */
export function rcloneDavRemote(name: string, remote: { url: string; user: string; password: string }): NodeJS.ProcessEnv {
  const prefix = `RCLONE_CONFIG_${name.toUpperCase()}_`;
  return {
    [`${prefix}TYPE`]: 'webdav',
    [`${prefix}URL`]: remote.url,
    [`${prefix}VENDOR`]: 'owncloud',
    [`${prefix}USER`]: remote.user,
    [`${prefix}PASS`]: rcloneObscure(remote.password),
    [`${prefix}PACER_MIN_SLEEP`]: '0.01ms',
  };
}

/** `rclone obscure`: the form rclone's configuration keeps a password in. */
export function rcloneObscure(password: string): string {
  const result = spawnSync(rcloneBinary(), ['obscure', password], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`rclone obscure failed: ${result.stderr}`);
  return result.stdout.trim();
}

/** The environment that defines the S3 remote `rcloneRemote` for `minio`; writes an empty config under `dir`. */
export function rcloneEnv(minio: { endpoint: string; accessKey: string; secretKey: string }, dir: string): NodeJS.ProcessEnv {
  const config = join(dir, 'rclone.conf');
  writeFileSync(config, '');
  const prefix = `RCLONE_CONFIG_${rcloneRemote.toUpperCase()}_`;
  return {
    PATH: process.env.PATH,
    HOME: dir,
    RCLONE_CONFIG: config,
    [`${prefix}TYPE`]: 's3',
    [`${prefix}PROVIDER`]: 'Minio',
    [`${prefix}ENDPOINT`]: minio.endpoint,
    [`${prefix}ACCESS_KEY_ID`]: minio.accessKey,
    [`${prefix}SECRET_ACCESS_KEY`]: minio.secretKey,
    [`${prefix}REGION`]: 'us-east-1',
  };
}

/** Runs `rclone ARGS`; resolves with its wall time in seconds, raises with its output on failure. */
export function runRclone(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): Promise<number> {
  const start = performance.now();
  const child = spawn(rcloneBinary(), args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve((performance.now() - start) / 1000);
      else reject(new Error(`rclone ${args.join(' ')} ${signal ? `was killed by ${signal}` : `exited with ${code}`}:\n${output}`));
    });
  });
}
