// WebDAV against S3: `rclone copy` of 1,000 × 4 KiB files and of one 256 MiB file to the
// gateway's /dav/ (webdav remote, vendor owncloud), and the same copies straight to the MinIO
// that the partition stores its blocks in, in the same run.
//
//   small_files_ratio   1,000 × 4 KiB: S3's time ÷ WebDAV's (target ≥ 0.5)
//   large_file_ratio    one 256 MiB file: S3's time ÷ WebDAV's (target ≥ 0.8)
//
// The partition gives presigned URLs at MinIO for block uploads (MESHWORK_S3_UPLOAD_REDIRECT=on,
// ADR 80), so the gateway PUTs a large file's blocks to the store itself; `--proxied` runs
// without, every block through the partition.
//
// `--quick` copies 200 small files and 64 MiB. Everything runs on loopback; the stack is
// e2e/dataplane/dav-stack.ts (etcd, MinIO, one partition, the gateway).
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rcloneDavRemote, rcloneEnv, rcloneRemote, runRclone } from '../e2e/agent/rclone.ts';
import { startDavStack } from '../e2e/dataplane/dav-stack.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const proxied = process.argv.includes('--proxied');
const MiB = 1024 * 1024;
const smallCount = quick ? 200 : 1000;
const largeBytes = (quick ? 64 : 256) * MiB;
const transfers = ['--transfers', '8', '--checkers', '8'];

const root = mkdtempSync(join(tmpdir(), 'meshwork-webdav-bench-'));
const small = join(root, 'small');
const large = join(root, 'large');
mkdirSync(small);
mkdirSync(large);
for (let i = 0; i < smallCount; i++) writeFileSync(join(small, `f${String(i).padStart(4, '0')}.bin`), randomBytes(4096));
writeFileSync(join(large, 'big.bin'), randomBytes(largeBytes));

const stack = await startDavStack('webdavbench', 'files', { uploadsToStore: !proxied });
const figures: Record<string, number> = {};
try {
  const s3 = rcloneEnv(stack.minio, root);
  const dav = { ...s3, ...rcloneDavRemote('dav', { url: stack.objectUrl, user: stack.userName, password: stack.appPassword }) };
  await runRclone(['mkdir', `${rcloneRemote}:baseline`], s3);
  figures.s3SmallS = await runRclone(['copy', small, `${rcloneRemote}:baseline/small`, ...transfers], s3);
  figures.davSmallS = await runRclone(['copy', small, 'dav:small', ...transfers], dav);
  figures.s3LargeS = await runRclone(['copy', large, `${rcloneRemote}:baseline/large`, ...transfers], s3);
  figures.davLargeS = await runRclone(['copy', large, 'dav:large', ...transfers], dav);
} finally {
  await stack.stop();
  rmSync(root, { recursive: true, force: true });
}

const fmt = (v: number | undefined, digits = 2): string => (v === undefined ? 'n/a' : v.toFixed(digits));
const smallRatio = figures.s3SmallS / figures.davSmallS;
const largeRatio = figures.s3LargeS / figures.davLargeS;
printTable(
  ['figure', 'webdav (s)', 's3 (s)', 'ratio', 'target', 'met?'],
  [
    [
      `small_files_ratio: ${smallCount} x 4 KiB`,
      fmt(figures.davSmallS),
      fmt(figures.s3SmallS),
      fmt(smallRatio),
      '>= 0.5',
      smallRatio >= 0.5 ? 'yes' : 'NO',
    ],
    [
      `large_file_ratio: ${largeBytes / MiB} MiB, ${proxied ? 'through the partition' : 'blocks to the store'}`,
      fmt(figures.davLargeS),
      fmt(figures.s3LargeS),
      fmt(largeRatio),
      '>= 0.8',
      largeRatio >= 0.8 ? 'yes' : 'NO',
    ],
    [
      `  (WebDAV: ${fmt(smallCount / figures.davSmallS, 0)} files/s, ${fmt(largeBytes / MiB / figures.davLargeS, 0)} MiB/s)`,
      '',
      '',
      '',
      '',
      '',
    ],
  ],
);
const round = (value: number): number => Number(value.toFixed(3));
console.log(
  JSON.stringify({
    benchmark: 'webdav',
    quick,
    blocks_to_store: !proxied,
    small_files_ratio: round(smallRatio),
    large_file_ratio: round(largeRatio),
    small_files_webdav_s: round(figures.davSmallS),
    small_files_s3_s: round(figures.s3SmallS),
    large_file_webdav_s: round(figures.davLargeS),
    large_file_s3_s: round(figures.s3LargeS),
  }),
);
