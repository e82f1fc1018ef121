// Peer-to-peer benchmark, on the NAT testbed of the p2p tests (e2e/p2p/p2p-stack.ts): devices
// `a` and `b` on a LAN behind a masquerading router, `outside` on the wide-area segment with the
// service (one partition, its etcd and MinIO). Every device is a `meshwork sync` process in its
// own network namespace.
//
//   lan_vs_cloud     time for a file to go from A to B directly (a p2p-only object: A commits
//                    the block list, B fetches from A) ÷ the same through the cloud (a cloud
//                    object, both peer listeners and relays off: A uploads, B downloads), each
//                    from the end of A's write until B holds the file byte for byte (target ≤ 0.7)
//   relay_ratio      throughput of the outside device fetching A's p2p-only file through A's
//                    relay ÷ B fetching it directly, each from the moment A announced it holds
//                    the file until the fetcher holds it (target ≥ 0.5)
//   relay_streams    idle relays one partition process holds, and its RSS per relay
//                    (`npm run bench -- relay --devices=N`, run as a child; target ≥ 10,000)
//
// Usage: npm run bench -- p2p [--quick] [--relay-devices=N]
//   --quick: 32 MiB files and 1,000 relays (a smoke run; targets are for the full run).
// Needs root (network namespaces, veth pairs, iptables), as the NAT test does.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { natSupport } from '../e2e/p2p/nat.ts';
import { sha256, startP2pStack, type DeviceKey, type P2pStack } from '../e2e/p2p/p2p-stack.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const MiB = 1024 * 1024;
const fileBytes = (quick ? 32 : 256) * MiB;
const relayDevicesArg = process.argv.find((a) => a.startsWith('--relay-devices='));
const relayDevices = relayDevicesArg ? Number(relayDevicesArg.slice('--relay-devices='.length)) : quick ? 1000 : 10_000;
const timeoutMs = 600_000;

const support = natSupport();
if (!support.ok) {
  console.error(`the p2p benchmark needs the NAT testbed: ${support.reason}`);
  process.exit(2);
}

const seconds = (ms: number): number => ms / 1000;

/**
 * A file written at A into a fresh object (`cloud` or p2p-only), synced by A and `to`; the
 * seconds from the end of A's write until `to` holds it, and from A's announcement until then.
 */
async function transfer(
  stack: P2pStack,
  name: string,
  cloud: boolean,
  to: DeviceKey,
  extraArgs: string[],
): Promise<{ objectId: string; endToEndS: number; fetchS: number }> {
  const objectId = await stack.createObject('a', name, cloud);
  const dirA = join(stack.homes.a.dir, name);
  const dirTo = join(stack.homes[to].dir, name);
  await stack.startAgent('a', dirA, objectId, extraArgs);
  await stack.startAgent(to, dirTo, objectId, extraArgs);
  const data = randomBytes(fileBytes);
  const digest = sha256(data);
  // Written beside the folder and moved in: A never sees (and commits) a partial file whose
  // blocks the fetcher would take before the whole one.
  const partial = join(stack.homes.a.dir, `${name}.partial`);
  await writeFile(partial, data);
  await rename(partial, join(dirA, 'big.bin'));
  const written = performance.now();
  // When A announced that it holds the file (with peers off, A announces nothing: end to end only).
  let announced = written;
  const peers = extraArgs.length === 0;
  const holder = peers ? stack.waitForHolder(objectId, 'big.bin', 'a', timeoutMs).then(() => (announced = performance.now())) : undefined;
  await stack.waitForFile(join(dirTo, 'big.bin'), digest, `${to} to hold ${name}/big.bin`, timeoutMs);
  const done = performance.now();
  await holder;
  await stack.stopAgents();
  return { objectId, endToEndS: seconds(done - written), fetchS: seconds(done - announced) };
}

const stack = await startP2pStack('p2pbench');
const figures: Record<string, number> = {};
try {
  const off = ['--peer-listen', 'off', '--no-relay'];
  const cloudPath = await transfer(stack, 'through-cloud', true, 'b', off);
  figures.cloudS = cloudPath.endToEndS;
  const direct = await transfer(stack, 'lan-direct', false, 'b', []);
  figures.directS = direct.endToEndS;
  figures.directFetchS = direct.fetchS;
  const relayed = await transfer(stack, 'relayed', false, 'outside', []);
  figures.relayFetchS = relayed.fetchS;
  figures.relayEndToEndS = relayed.endToEndS;
  const where = await stack.transfer('outside', relayed.objectId);
  if (where.fromRelays !== fileBytes)
    throw new Error(`the outside device took ${where.fromRelays} of ${fileBytes} bytes through the relay`);
} finally {
  await stack.stop();
}

// The idle relays: the relay benchmark, in its own process (it needs one descriptor per relay on each side).
const relayRun = spawnSync(process.execPath, ['--expose-gc', join(import.meta.dirname, 'relay.bench.ts'), `--devices=${relayDevices}`], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
  timeout: timeoutMs,
});
process.stdout.write(relayRun.stdout);
const relayJson = relayRun.stdout
  .trim()
  .split('\n')
  .reverse()
  .find((l) => l.startsWith('{'));
const relay = relayJson ? (JSON.parse(relayJson) as { relay_idle_devices?: number; relay_bytes_per_device?: number }) : {};

const lanVsCloud = figures.directS / figures.cloudS;
const directMiBs = fileBytes / MiB / figures.directFetchS;
const relayMiBs = fileBytes / MiB / figures.relayFetchS;
const relayRatio = relayMiBs / directMiBs;
const fmt = (v: number | undefined, digits = 2): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));
printTable(
  ['figure', 'measured', 'baseline', 'ratio', 'target', 'met?'],
  [
    [
      `lan_vs_cloud: ${fileBytes / MiB} MiB A→B (s)`,
      fmt(figures.directS),
      fmt(figures.cloudS),
      fmt(lanVsCloud),
      '<= 0.7',
      lanVsCloud <= 0.7 ? 'yes' : 'NO',
    ],
    [
      `relay_ratio: MiB/s relayed vs direct`,
      fmt(relayMiBs, 1),
      fmt(directMiBs, 1),
      fmt(relayRatio),
      '>= 0.5',
      relayRatio >= 0.5 ? 'yes' : 'NO',
    ],
    [
      `relay_streams: idle relays held (bytes each)`,
      `${relay.relay_idle_devices ?? 'n/a'}`,
      '',
      `${relay.relay_bytes_per_device ?? 'n/a'}`,
      '>= 10000',
      (relay.relay_idle_devices ?? 0) >= 10_000 ? 'yes' : 'NO',
    ],
  ],
);
const round = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(3)));
console.log(
  JSON.stringify({
    benchmark: 'p2p',
    quick,
    file_mib: fileBytes / MiB,
    lan_vs_cloud: round(lanVsCloud),
    direct_s: round(figures.directS),
    cloud_s: round(figures.cloudS),
    relay_ratio: round(relayRatio),
    relay_mib_s: round(relayMiBs),
    direct_mib_s: round(directMiBs),
    relay_streams: relay.relay_idle_devices ?? null,
    relay_bytes_per_device: relay.relay_bytes_per_device ?? null,
  }),
);
