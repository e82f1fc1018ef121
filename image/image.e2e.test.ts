// The image as users get it: `make image` builds it, a second build from the same commit gives
// the same digest, and its contents and configuration are what the chart and the supply-chain
// promises say. Then its root filesystem, unpacked by umoci into an OCI bundle, runs under runc
// as the image says (uid 65532, entrypoint, read-only root, /tmp a tmpfs, host network): the
// partition role against etcd and MinIO started by the harness (also as uid 10001, which the
// operator's StatefulSet sets), a bad configuration, and the operator role against the shared
// control plane.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { dataplaneNodeOptions, ExitCode, configInvalidMessagePrefix } from '@meshwork/contract';
import { partitionEnv } from '../e2e/dataplane/partition-process.ts';
import { repoRoot } from '../e2e/harness/binaries.ts';
import { startEtcd, type EtcdServer } from '../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../e2e/harness/minio.ts';
import { freePort } from '../e2e/harness/ports.ts';
import { ManagedProcess, type ExitStatus } from '../e2e/harness/process.ts';
import { installCrds, kubectlOk } from '../e2e/operator/harness.ts';
import { debianPackages, imageSize } from './supply-chain.ts';

const run = promisify(execFile);
const uid = 65532;
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const runtime = execFileSync('sh', ['-c', `command -v ${process.env.IMAGE_RUNTIME ?? 'runc'}`], { encoding: 'utf8' }).trim();

interface OciConfig {
  config: {
    User: string;
    Entrypoint: string[];
    Cmd?: string[];
    Env: string[];
    WorkingDir: string;
    StopSignal: string;
    Labels: Record<string, string>;
  };
}

/** A runtime spec (config.json) as umoci unpack writes it; only the fields the tests change are typed. */
interface RuntimeSpec {
  process: { terminal: boolean; args: string[]; env: string[]; capabilities: Record<string, string[]>; user: { uid: number; gid: number } };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: { namespaces: { type: string }[] };
}

let dir: string;
let rootfs: string;
let baseSpec: RuntimeSpec;
const containers: string[] = [];
let etcd: EtcdServer | undefined;
let minio: MinioServer | undefined;

/** The image's OCI config blob, read from a layout. */
function imageConfig(layout: string): OciConfig {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (digest: string): string => readFileSync(join(layout, 'blobs', ...digest.split(':')), 'utf8');
  const manifest = JSON.parse(blob(index.manifests[0]!.digest)) as { config: { digest: string } };
  return JSON.parse(blob(manifest.config.digest)) as OciConfig;
}

function sha256(path: string): string {
  return execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]!;
}

/** Builds the image into `dist`; returns what the build printed. */
async function build(command: string, args: string[], dist: string): Promise<string> {
  const t0 = Date.now();
  const { stdout } = await run(command, args, {
    cwd: repoRoot,
    env: { ...process.env, IMAGE_DIST: dist, IMAGE_WORK: join(dir, 'work') },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 420_000,
  });
  const lines = stdout.split('\n').filter((l) => l.startsWith('image: '));
  console.log(`${command} ${args.join(' ')}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n${lines.slice(-3).join('\n')}`);
  return stdout;
}

interface ContainerOptions {
  name: string;
  /** The user to run as; the image's own (65532) unless given, as a pod's runAsUser would. */
  uid?: number;
  args: string[];
  env: Record<string, string>;
  /** Host paths bound read-only at the same or another path. */
  binds?: { source: string; destination: string; writable?: boolean }[];
}

interface Container {
  id: string;
  process: ManagedProcess;
}

/** Runs the unpacked image under the runtime, as a Kubernetes pod would: read-only root, no capabilities. */
function startContainer(options: ContainerOptions): Container {
  const bundle = join(dir, 'bundles', options.name);
  mkdirSync(bundle, { recursive: true });
  const spec = structuredClone(baseSpec);
  spec.root = { path: rootfs, readonly: true };
  spec.hostname = options.name;
  spec.process.terminal = false;
  if (options.uid !== undefined) spec.process.user = { uid: options.uid, gid: options.uid };
  spec.process.args = [...spec.process.args, ...options.args];
  spec.process.env = [...spec.process.env, ...Object.entries(options.env).map(([k, v]) => `${k}=${v}`)];
  for (const set of Object.keys(spec.process.capabilities)) spec.process.capabilities[set] = [];
  // The host's network, so the container reaches the servers on loopback and is reached there.
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
  spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=64m'] });
  for (const b of options.binds ?? []) {
    spec.mounts.push({ destination: b.destination, type: 'bind', source: b.source, options: ['bind', b.writable ? 'rw' : 'ro'] });
  }
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  const id = `meshwork-image-test-${process.pid}-${options.name}`;
  containers.push(id);
  const managed = ManagedProcess.start({
    component: `image ${options.name}`,
    binary: runtime,
    args: ['run', '--bundle', bundle, id],
    logFile: join(bundle, 'container.log'),
    env: { PATH: process.env.PATH },
  });
  return { id, process: managed };
}

/** The real and effective user ids of a running container's first process, as the kernel sees them. */
async function containerUids(container: Container): Promise<string> {
  const { stdout } = await run(runtime, ['state', container.id]);
  const { pid } = JSON.parse(stdout) as { pid: number };
  return /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim();
}

/** The container's exit, or an error after `ms`. */
async function exitWithin(container: Container, ms: number, what: string): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      container.process.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A file the container's user owns and may read (Secrets are mounted so). */
function fileForContainer(path: string, content: string, mode = 0o400, owner = uid): string {
  writeFileSync(path, content, { mode });
  chownSync(path, owner, owner);
  return path;
}

describe('the Meshwork image', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshwork-image-'));
    // The stores start while the image builds.
    const stores = Promise.all([startEtcd(), startMinio()]);
    await build('make', ['image', `IMAGE_DIST=${join(dir, 'a')}`], join(dir, 'a'));
    await build('bash', ['image/build.sh'], join(dir, 'b'));
    rmSync(join(dir, 'work'), { recursive: true, force: true });
    await run('umoci', ['unpack', '--image', `${join(dir, 'a', 'oci')}:${version}`, join(dir, 'unpacked')]);
    rootfs = join(dir, 'unpacked', 'rootfs');
    baseSpec = JSON.parse(readFileSync(join(dir, 'unpacked', 'config.json'), 'utf8')) as RuntimeSpec;
    [etcd, minio] = await stores;
  }, 900_000);

  afterAll(async () => {
    for (const id of containers) await run(runtime, ['delete', '--force', id]).catch(() => undefined);
    await Promise.allSettled([etcd?.stop(), minio?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has the same digest and the same archives when built twice from the same commit', () => {
    const digest = readFileSync(join(dir, 'a', 'digest'), 'utf8').trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(readFileSync(join(dir, 'b', 'digest'), 'utf8').trim()).toBe(digest);
    for (const file of [`meshwork-${version}.oci.tar`, `meshwork-${version}.docker.tar`, 'sbom.cdx.json', 'licenses.tsv']) {
      expect(sha256(join(dir, 'b', file)), file).toBe(sha256(join(dir, 'a', file)));
    }
  });

  it("is the chart's default image, with the OCI labels, a non-root user and SIGTERM to stop", async () => {
    const values = parse(readFileSync(join(repoRoot, 'charts/meshwork/values.yaml'), 'utf8')) as {
      image: { repository: string; tag: string };
    };
    const chart = parse(readFileSync(join(repoRoot, 'charts/meshwork/Chart.yaml'), 'utf8')) as { appVersion: string };
    const chartImage = `${values.image.repository}:${values.image.tag || chart.appVersion}`;
    const { stdout } = await run('tar', ['-xOf', join(dir, 'a', `meshwork-${version}.docker.tar`), 'manifest.json']);
    // Docker Hub's name in full, as the kubelet resolves the chart's short name.
    expect((JSON.parse(stdout) as { RepoTags: string[] }[])[0]!.RepoTags).toEqual([`docker.io/${chartImage}`]);
    expect(chart.appVersion).toBe(version);

    const { config } = imageConfig(join(dir, 'a', 'oci'));
    expect(config.User).toBe(`${uid}:${uid}`);
    expect(config.Entrypoint).toEqual(['node', '/app/meshwork.ts']);
    expect(config.Cmd ?? []).toEqual([]);
    expect(config.StopSignal).toBe('SIGTERM');
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    expect(config.Labels).toMatchObject({ 'org.opencontainers.image.version': version, 'org.opencontainers.image.licenses': 'Apache-2.0' });
    expect(config.Labels['org.opencontainers.image.revision']).toMatch(new RegExp(`^${head}(-dirty)?$`));
    expect(config.Labels['org.opencontainers.image.source']).toMatch(/^https:\/\//);
  });

  it('is smaller than 150 MB compressed', () => {
    const { compressed } = imageSize(join(dir, 'a', 'oci'));
    expect(compressed).toBeLessThan(150e6);
  });

  it('holds production dependencies only, the sources without tests, an SBOM and a licence list', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const dev = Object.entries(lock.packages).filter(([path, p]) => p.dev === true && path.startsWith('node_modules/'));
    expect(dev.map(([path]) => path)).toContain('node_modules/vitest');
    expect(dev.filter(([path]) => existsSync(join(rootfs, 'app', path))).map(([path]) => path)).toEqual([]);
    const prod = Object.entries(lock.packages).filter(([path, p]) => p.dev !== true && path.startsWith('node_modules/'));
    expect(prod.filter(([path]) => !existsSync(join(rootfs, 'app', path))).map(([path]) => path)).toEqual([]);

    const files = execFileSync('find', ['app', '-path', 'app/node_modules', '-prune', '-o', '-type', 'f', '-print'], {
      cwd: rootfs,
      encoding: 'utf8',
    }).split('\n');
    expect(files).toContain('app/meshwork.ts');
    expect(files).toContain('app/dataplane/src/main.ts');
    // The web UI, built: the gateway's default MESHWORK_GATEWAY_WEB_DIR.
    expect(files).toContain('app/web/dist/index.html');
    expect(files.some((f) => /^app\/web\/dist\/assets\/index-[\w-]+\.js$/.test(f))).toBe(true);
    expect(files.filter((f) => /\.test\.ts$|\/(testing|fixtures)\//.test(f))).toEqual([]);

    const doc = join(rootfs, 'usr/share/doc/meshwork');
    const sbom = JSON.parse(readFileSync(join(doc, 'sbom.cdx.json'), 'utf8')) as {
      bomFormat: string;
      components: { name: string; group?: string }[];
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    const names = new Set(sbom.components.map((c) => (c.group ? `${c.group}/${c.name}` : c.name)));
    expect(names).toContain('etcd3');
    expect(names).not.toContain('vitest');
    expect(readFileSync(join(doc, 'sbom.cdx.json'), 'utf8')).toBe(readFileSync(join(dir, 'a', 'sbom.cdx.json'), 'utf8'));
    const licenses = readFileSync(join(doc, 'licenses.tsv'), 'utf8');
    expect(licenses).toBe(readFileSync(join(dir, 'a', 'licenses.tsv'), 'utf8'));
    expect(licenses).toMatch(/^node\tnode\t24\.\d+\.\d+\tMIT/m);
    expect(licenses).toMatch(/^npm\tetcd3\t[^\t]+\tMIT$/m);
    expect(licenses).toMatch(/^npm\t@meshwork\/contract\t[^\t]+\tApache-2\.0$/m);
    expect(licenses.split('\n').filter((l) => l.includes('UNKNOWN'))).toEqual([]);
    for (const p of debianPackages(readFileSync(join(rootfs, 'var/lib/dpkg/status'), 'utf8'))) {
      expect(licenses).toContain(`debian\t${p.name}\t${p.version}\t`);
      expect(existsSync(join(rootfs, 'usr/share/doc', p.name, 'copyright')), p.name).toBe(true);
    }
  });

  // The image's own user, and the one the operator's StatefulSet sets for data-plane pods.
  it.each([{ user: 65532 }, { user: 10001 }])(
    'runs the partition role read-only as uid $user, answers /readyz and drains on SIGTERM',
    async ({ user }) => {
      const home = join(dir, `partition-${user}`);
      mkdirSync(join(home, 'secrets'), { recursive: true });
      fileForContainer(join(home, 'secrets', 'admin-token'), 'admin-token-of-the-image-test', 0o400, user);
      const terminationLog = fileForContainer(join(home, 'termination-log'), '', 0o600, user);
      const port = await freePort();
      const env = partitionEnv(
        {
          etcdEndpoint: etcd!.endpoint,
          minio: { endpoint: minio!.endpoint, accessKey: minio!.accessKey, secretKey: minio!.secretKey, bucket: minio!.bucket },
        },
        { partition: `image-${user}`, port, adminTokenFile: '/var/run/secrets/meshwork/admin-token', dir: home },
      );
      delete env.PATH;
      delete env.MESHWORK_TERMINATION_MESSAGE_PATH;
      const container = startContainer({
        name: `partition-${user}`,
        uid: user,
        args: ['partition'],
        env: { ...(env as Record<string, string>), NODE_OPTIONS: dataplaneNodeOptions, MESHWORK_POD_NAME: `image-${user}-0` },
        binds: [
          { source: join(home, 'secrets'), destination: '/var/run/secrets/meshwork' },
          { source: terminationLog, destination: '/dev/termination-log', writable: true },
        ],
      });
      await container.process.waitReady(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok,
        { timeoutMs: 90_000, what: 'to answer /readyz from the image' },
      );
      expect(await containerUids(container)).toBe(`${user}\t${user}\t${user}\t${user}`);
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      container.process.signal('SIGTERM');
      const exit = await exitWithin(container, 60_000, 'the partition after SIGTERM');
      expect(exit.code, container.process.logTail()).toBe(ExitCode.ok);
      expect(container.process.logTail(200)).not.toMatch(/EROFS|EACCES/);
    },
  );

  it('exits with the configuration code and a termination message naming the bad field', async () => {
    const home = join(dir, 'bad-config');
    mkdirSync(home, { recursive: true });
    const terminationLog = fileForContainer(join(home, 'termination-log'), '', 0o600);
    const container = startContainer({
      name: 'bad-config',
      args: ['partition'],
      env: { MESHWORK_PARTITION: 'image', MESHWORK_SLOTS: '0-9999', MESHWORK_ETCD_ENDPOINTS: etcd!.endpoint },
      binds: [{ source: terminationLog, destination: '/dev/termination-log', writable: true }],
    });
    const exit = await exitWithin(container, 60_000, 'the partition with a bad configuration');
    expect(exit.code, container.process.logTail()).toBe(ExitCode.configInvalid);
    const message = readFileSync(terminationLog, 'utf8');
    expect(message.startsWith(configInvalidMessagePrefix), message).toBe(true);
    expect(message).toContain('MESHWORK_SLOTS');
  });

  it('runs the operator role against the control plane and answers /readyz', async () => {
    const stack = inject('stack');
    const kubeconfig = stack.controlPlane.adminKubeconfig;
    await installCrds(kubeconfig);
    const namespace = `image-${process.pid}`;
    await kubectlOk(kubeconfig, ['create', 'namespace', namespace]);
    const home = join(dir, 'operator');
    mkdirSync(home, { recursive: true });
    fileForContainer(join(home, 'kubeconfig'), readFileSync(kubeconfig, 'utf8'));
    const port = await freePort();
    const container = startContainer({
      name: 'operator',
      args: ['operator'],
      env: {
        KUBECONFIG: '/var/run/meshwork/kubeconfig',
        MESHWORK_OPERATOR_NAMESPACE: namespace,
        MESHWORK_OPERATOR_WATCH_NAMESPACE: namespace,
        MESHWORK_OPERATOR_HTTP_ADDRESS: `127.0.0.1:${port}`,
        MESHWORK_OPERATOR_LEASE_NAME: 'meshwork-operator-image',
      },
      binds: [{ source: home, destination: '/var/run/meshwork' }],
    });
    try {
      await container.process.waitReady(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok,
        {
          timeoutMs: 90_000,
          what: 'to answer /readyz from the image',
        },
      );
      const lease = await kubectlOk(kubeconfig, [
        'get',
        'lease',
        '-n',
        namespace,
        'meshwork-operator-image',
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]);
      expect(lease).not.toBe('');
      expect(await containerUids(container)).toBe(`${uid}\t${uid}\t${uid}\t${uid}`);
    } finally {
      await container.process.stop();
      await kubectlOk(kubeconfig, ['delete', 'namespace', namespace, '--wait=false']);
    }
  });

  it('gives the image user no file to write but the scratch folders, even where the root is writable', () => {
    // Everything else is root's and not writable by others: the app cannot change itself.
    const writable = execFileSync(
      'find',
      [rootfs, '-xdev', '(', '-perm', '-o+w', '-o', '-user', String(uid), ')', '-not', '-type', 'l', '-print'],
      {
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter((p) => p !== '')
      .map((p) => p.slice(rootfs.length));
    expect(writable.sort()).toEqual(['/home/nonroot', '/tmp', '/var/lock', '/var/tmp']);
    expect(statSync(join(rootfs, 'tmp')).mode & 0o1777).toBe(0o1777);
    expect(readdirSync(join(rootfs, 'dev'))).toEqual([]);
  });
});
