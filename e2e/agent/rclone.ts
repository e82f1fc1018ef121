// rclone against a MinIO server: the baseline the agent benchmark compares a large file's
// transfer against (`rclone copy` up to the bucket, then down into another directory).
// Debian's `rclone` (`make deps-debian`); the remote is configured by environment only
// (RCLONE_CONFIG_<NAME>_*), with an empty config file so nothing outside the temp dir is read.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The remote's name in rclone paths: `benchminio:bucket/key`. */
export const rcloneRemote = 'benchminio';

/** The rclone binary on PATH, or an error naming the remedy. */
export function rcloneBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v rclone'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('rclone is not installed: run "make deps-debian" (Debian package rclone)');
  return found;
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
