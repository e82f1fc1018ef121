// `make up` brings the local stack up and says how to reach it; pods get real addresses that
// Services and cluster DNS route to (as root, ADR 27); `make down` leaves nothing running and
// no network behind, and the next `make up` brings the same cluster back with its data, here
// with its pods run from the built image (`make up IMAGE=1`).
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshworkClient, type Notifications } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { downloadInterrupted } from '../dataplane/interrupted-download.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, requireBinary } from '../harness/binaries.ts';
import { waitFor } from '../harness/wait.ts';
import { leftovers, networkSupport } from '../node-agent/network.ts';
import { processAlive, readSettings, readState, type StackState } from './state.ts';

/** Pids of processes whose command line or environment mentions `text` (pods have HOME in the stack). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) || readFileSync(`/proc/${entry}/environ`, 'utf8').includes(text))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids.filter(processAlive);
}

/** Each pid with its command line, so that a failure says what was left running. */
function describeProcesses(pids: number[]): string[] {
  return pids.map((pid) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`;
    } catch {
      return `${pid} (gone)`;
    }
  });
}

const MiB = 1024 * 1024;
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const networked = networkSupport().ok && process.env.MESHWORK_STACK_NETWORK !== 'loopback';
const upTimeoutMs = 420_000;

describe('make up and make down', () => {
  let dir = '';
  let state: StackState;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, MESHWORK_STACK_DIR: dir });
  const kubectl = (...args: string[]): string =>
    execFileSync(requireBinary('kubectl'), ['--kubeconfig', state.kubeconfig, ...args], { encoding: 'utf8', timeout: 60_000 });
  const up = (...args: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/up.ts'), ...args], { env: env(), encoding: 'utf8', timeout: upTimeoutMs });
  const down = (...args: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/down.ts'), ...args], { env: env(), encoding: 'utf8', timeout: 120_000 });
  /** The pod IPs of one partition's members. */
  const memberIPs = (partition: string): string[] =>
    kubectl(
      'get',
      'pods',
      '-n',
      state.mesh.namespace,
      '-l',
      `meshwork.io/partition=${partition}`,
      '-o',
      'jsonpath={.items[*].status.podIP}',
    )
      .split(' ')
      .filter(Boolean);

  /** The API's one address: the gateway's NodePort, or without pod networking the gateway pod itself. */
  const entry = (): string => {
    if (state.mesh.gateway !== undefined) return state.mesh.gateway;
    const ip = kubectl(
      'get',
      'pods',
      '-n',
      state.mesh.namespace,
      '-l',
      'app.kubernetes.io/component=gateway',
      '-o',
      'jsonpath={.items[0].status.podIP}',
    );
    return `http://${ip}:8080`;
  };

  afterAll(async () => {
    if (dir) {
      spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/down.ts'), '--wipe'], { env: env() });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it(
    'starts the stack, reports how to reach it, and gives pods addresses that EndpointSlices list',
    { timeout: upTimeoutMs + 60_000 },
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'meshwork-stack-'));
      const started = up();
      expect(started.status, started.stderr).toBe(0);
      expect(started.stdout).toMatch(/Up in \d+\.\d s\./);
      expect(started.stdout).toContain('export KUBECONFIG=');
      state = readState(dir)!;
      expect(state.ready).toBe(true);
      expect(state.network.mode).toBe(networked ? 'netns' : 'loopback');
      // Jaeger runs with its UI, and the sample Mesh is told to export to it (and tells its partitions).
      expect(started.stdout).toContain(`Jaeger (traces)  ${state.jaeger!.ui}`);
      expect((await fetch(`${state.jaeger!.ui}/api/services`)).status).toBe(200);
      for (const [kind, name] of [['mesh', state.mesh.name], ...state.partitions.names.map((p) => ['meshpartition', p])] as const) {
        expect(kubectl('get', kind, name, '-n', state.mesh.namespace, '-o', 'jsonpath={.spec.telemetry.otlpEndpoint}'), name).toBe(
          state.jaeger!.otlp,
        );
      }
      if (!networked) expect(started.stdout).toContain('WARNING: loopback pod IPs only');

      const nodes = kubectl('get', 'nodes', '--no-headers');
      expect(
        nodes
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
      ).toEqual(['mw-node-1 Ready', 'mw-node-2 Ready', 'mw-node-3 Ready']);

      // The operator (installed with the chart) has brought the sample Mesh up: two partitions,
      // each member a data-plane process answering on its pod IP.
      const { names } = state.partitions;
      expect(names).toEqual(['meshwork-p0', 'meshwork-p1']);
      expect(
        kubectl(
          'get',
          'mesh',
          state.mesh.name,
          '-n',
          state.mesh.namespace,
          '-o',
          'jsonpath={.status.slotsCovered} {.status.conditions[?(@.type=="Ready")].status}',
        ),
      ).toBe('4096 True');
      for (const name of names) {
        expect(
          kubectl(
            'get',
            'meshpartition',
            name,
            '-n',
            state.mesh.namespace,
            '-o',
            'jsonpath={.status.readyReplicas} {.status.conditions[?(@.type=="Ready")].status}',
          ),
        ).toBe('2 True');
        const ips = memberIPs(name);
        expect(ips).toHaveLength(2);
        for (const ip of ips) {
          if (networked) expect(ip).toMatch(/^198\.19\.\d+\.\d+$/);
          expect(await (await fetch(`http://${ip}:8080/readyz`)).json()).toMatchObject({ status: 'ready' });
          // Every member checks its four volumes (the claims the node agent provisioned) and the stores.
          const deep = (await (await fetch(`http://${ip}:8080/healthz/deep`)).json()) as {
            status: string;
            checks: { name: string; ok: boolean }[];
          };
          expect(deep.status).toBe('ok');
          expect(deep.checks.filter((c) => c.name.startsWith('volume:') && c.ok)).toHaveLength(4);
        }
        if (networked) {
          // The partition's Services list every Ready member by its address.
          const listed = await waitFor(
            () => {
              const slice = kubectl(
                'get',
                'endpointslices',
                '-n',
                state.mesh.namespace,
                '-l',
                `kubernetes.io/service-name=${name}-peers`,
                '-o',
                'jsonpath={.items[*].endpoints[*].addresses[0]}',
              );
              const addresses = slice.split(' ').filter(Boolean).sort();
              return addresses.length === 2 ? addresses : undefined;
            },
            { description: `the EndpointSlice of ${name}-peers to list its 2 members`, timeoutMs: 60_000 },
          );
          expect(listed).toEqual([...ips].sort());
        }
      }

      // Prometheus found every Meshwork pod through the API server and labels them by role.
      expect(state.prometheus).toBeDefined();
      expect(started.stdout).toContain(`Prometheus       ${state.prometheus}`);
      const scraped = await waitFor(
        async () => {
          const res = await fetch(`${state.prometheus}/api/v1/query?query=${encodeURIComponent('up == 1')}`);
          const body = (await res.json()) as { data: { result: { metric: Record<string, string> }[] } };
          const roles = body.data.result.map((r) => `${r.metric.role}:${r.metric.partition ?? ''}`).sort();
          const complete =
            names.every((name) => roles.filter((r) => r === `partition:${name}`).length === 2) &&
            roles.includes('operator:') &&
            roles.includes('gateway:');
          return complete ? roles : undefined;
        },
        { description: 'Prometheus to scrape the members, the gateway and the operator', timeoutMs: 60_000, intervalMs: 1000 },
      );
      for (const name of names) expect(scraped.filter((r) => r === `partition:${name}`)).toHaveLength(2);
      // It found them with Kubernetes discovery, as a ServiceAccount that may list and watch pods and do nothing else.
      const targets = (await (await fetch(`${state.prometheus}/api/v1/targets?state=active`)).json()) as {
        data: { activeTargets: { scrapePool: string; discoveredLabels: Record<string, string> }[] };
      };
      const discovered = targets.data.activeTargets.filter((t) => t.scrapePool === 'meshwork-pods');
      expect(discovered.length).toBeGreaterThanOrEqual(2 * names.length + 2);
      for (const t of discovered) expect(t.discoveredLabels.__meta_kubernetes_pod_container_port_name).toBe('http');
      const may = (verb: string, resource: string): string => {
        const sa = 'system:serviceaccount:meshwork-monitoring:prometheus';
        const run = spawnSync(
          requireBinary('kubectl'),
          ['--kubeconfig', state.kubeconfig, 'auth', 'can-i', verb, resource, '-A', '--as', sa],
          {
            encoding: 'utf8',
          },
        );
        return run.stdout.trim();
      };
      expect([may('list', 'pods'), may('watch', 'pods'), may('get', 'secrets'), may('delete', 'pods'), may('list', 'nodes')]).toEqual([
        'yes',
        'yes',
        'no',
        'no',
        'no',
      ]);
      if (networked) {
        // The Mesh's gateway answers from this machine at the address make up printed (a node's
        // address and the NodePort, forwarded by kube-proxy to the gateway pod wherever it runs),
        // and its slot map names both partitions.
        const gateway = state.mesh.gateway;
        expect(gateway).toMatch(/^http:\/\/198\.19\.\d+\.\d+:\d+$/);
        expect(started.stdout).toContain(`gateway          ${gateway}`);
        const slots = (await (await fetch(`${gateway}/v1/slots`)).json()) as { partitions: { partition: string }[] };
        expect(new Set(slots.partitions.map((p) => p.partition))).toEqual(new Set(names));
        // Nothing complained about endpoints.
        expect(kubectl('get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}')).not.toMatch(/FailedToUpdateEndpoint/);
      }

      // A second make up finds the stack running and only describes it.
      const again = spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/up.ts')], { env: env(), encoding: 'utf8', timeout: 30_000 });
      expect(again.stdout).toContain(`pid ${state.pid}`);
      expect(again.stdout).not.toContain('Starting');
    },
  );

  it.runIf(networked)(
    'routes a ClusterIP Service and a headless Service’s DNS names to the right pods, and drops a NotReady pod',
    { timeout: 300_000 },
    async () => {
      const namespace = `net-${randomBytes(3).toString('hex')}`;
      const manifest = `
apiVersion: v1
kind: Namespace
metadata: { name: ${namespace} }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${namespace} }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web-peers, namespace: ${namespace} }
spec:
  clusterIP: None
  selector: { app: web }
  ports: [{ port: 8080 }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: web, namespace: ${namespace} }
spec:
  replicas: 2
  serviceName: web-peers
  podManagementPolicy: Parallel
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: meshwork/meshwork:dev
          command: [node, e2e/node-agent/fixtures/web.ts]
          resources: { requests: { cpu: 10m } }
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /readyz, port: http }, periodSeconds: 1, failureThreshold: 1 }
`;
      execFileSync(requireBinary('kubectl'), ['--kubeconfig', state.kubeconfig, 'apply', '-f', '-'], { input: manifest, timeout: 60_000 });
      const pods = await waitFor(
        () => {
          const out = kubectl(
            'get',
            'pods',
            '-n',
            namespace,
            '-o',
            'jsonpath={range .items[*]}{.metadata.name}={.status.podIP}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
          );
          const rows = out
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split('='));
          return rows.length === 2 && rows.every((r) => r[2] === 'True') ? new Map(rows.map((r) => [r[0]!, r[1]!])) : undefined;
        },
        { description: 'two Ready web pods', timeoutMs: 120_000 },
      );
      const ip0 = pods.get('web-0')!;
      const ip1 = pods.get('web-1')!;
      expect(ip0).toMatch(/^198\.19\./);
      const clusterIP = kubectl('get', 'service', 'web', '-n', namespace, '-o', 'jsonpath={.spec.clusterIP}');
      expect(clusterIP).toMatch(/^198\.18\.1(2[89]|3\d|4[0-3])\./);

      /** Asks pod web-0 (from inside its node's namespace) to fetch a URL; answers the pod that served it. */
      const servedBy = async (url: string): Promise<string | undefined> => {
        const res = (await (await fetch(`http://${ip0}:8080/fetch?url=${encodeURIComponent(url)}`)).json()) as {
          status?: number;
          body?: string;
        };
        return res.status === 200 ? (JSON.parse(res.body!) as { pod: string }).pod : undefined;
      };
      const resolve = async (name: string): Promise<string[] | undefined> =>
        ((await (await fetch(`http://${ip0}:8080/resolve?name=${encodeURIComponent(name)}`)).json()) as { addresses?: string[] }).addresses;
      /** The pods that answered `tries` requests through the ClusterIP. */
      const servers = async (tries: number): Promise<Set<string | undefined>> => {
        const seen = new Set<string | undefined>();
        for (let i = 0; i < tries; i++) seen.add(await servedBy(`http://${clusterIP}/whoami`));
        return seen;
      };

      // The ClusterIP reaches both pods (kube-proxy picks one at random per connection).
      await waitFor(async () => ((await servers(10)).size === 2 ? true : undefined), {
        description: 'the ClusterIP to reach both pods',
        timeoutMs: 60_000,
      });
      expect([...(await servers(10))].every((p) => p === 'web-0' || p === 'web-1')).toBe(true);
      /** Waits until `read` answers `expected` (CoreDNS and kube-proxy follow the API with a lag). */
      const settles = async <T>(what: string, read: () => Promise<T>, expected: T): Promise<void> => {
        let last: T | undefined;
        await waitFor(
          async () => {
            last = await read();
            return JSON.stringify(last) === JSON.stringify(expected) ? true : undefined;
          },
          { description: what, timeoutMs: 60_000 },
        ).catch((err: unknown) => {
          expect(last, String(err)).toEqual(expected);
        });
      };
      // Cluster DNS: the Service's name gives its ClusterIP; the headless Service's name gives
      // the pods, and each pod's own name reaches that pod.
      await settles('the Service name to give its ClusterIP', () => resolve(`web.${namespace}.svc.cluster.local`), [clusterIP]);
      await settles('the headless name to give both pods', () => resolve(`web-peers.${namespace}.svc.cluster.local`), [ip0, ip1].sort());
      await settles('a pod’s own name to give its address', () => resolve(`web-1.web-peers.${namespace}.svc.cluster.local`), [ip1]);
      expect(await servedBy(`http://web-1.web-peers.${namespace}.svc.cluster.local:8080/whoami`)).toBe('web-1');
      expect(await servedBy(`http://web.${namespace}:80/whoami`)).toMatch(/^web-[01]$/);
      // The partition's own headless Service, as the issue asks.
      await settles(
        'the peers name to give the members',
        () => resolve(`${state.partitions.names[0]}-peers.${state.mesh.namespace}.svc.cluster.local`),
        memberIPs(state.partitions.names[0]!).sort(),
      );

      // web-1 turns NotReady: it leaves the headless name and the ClusterIP's rotation.
      await fetch(`http://${ip1}:8080/ready?value=false`);
      await settles('the headless name to drop the NotReady pod', () => resolve(`web-peers.${namespace}.svc.cluster.local`), [ip0]);
      await settles('kube-proxy to drop the NotReady pod', async () => [...(await servers(8))], ['web-0']);
      expect([...(await servers(12))]).toEqual(['web-0']);
      // Ready again: it comes back.
      await fetch(`http://${ip1}:8080/ready?value=true`);
      await waitFor(async () => ((await servers(6)).has('web-1') ? true : undefined), {
        description: 'the pod to rejoin the Service',
        timeoutMs: 60_000,
      });
      kubectl('delete', 'namespace', namespace, '--wait=false');
    },
  );

  it('a gateway pod killed during a download and during a long poll: the client goes on and finishes', { timeout: 300_000 }, async () => {
    const namespace = state.mesh.namespace;
    const adminToken = Buffer.from(
      kubectl('get', 'secret', `${state.mesh.name}-admin`, '-n', namespace, '-o', 'jsonpath={.data.token}'),
      'base64',
    ).toString('utf8');
    const gatewayPod = (): { name: string; restarts: number; ready: boolean } => {
      const pod = JSON.parse(kubectl('get', 'pods', '-n', namespace, '-l', 'app.kubernetes.io/component=gateway', '-o', 'json')) as {
        items: { metadata: { name: string }; status: { containerStatuses?: { restartCount: number; ready: boolean }[] } }[];
      };
      const [only] = pod.items;
      const status = only?.status.containerStatuses?.[0];
      return { name: only?.metadata.name ?? '', restarts: status?.restartCount ?? 0, ready: status?.ready ?? false };
    };
    /** SIGKILLs the gateway's container (the node agent restarts it, as a kubelet does); resolves once it is back and ready. */
    const killGateway = async (): Promise<void> => {
      const before = gatewayPod();
      const res = await fetch(`${state.faults}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'kill-pod', namespace, pod: before.name }),
      });
      expect(res.status, await res.text()).toBe(200);
      await waitFor(
        () => {
          const now = gatewayPod();
          return now.name === before.name && now.restarts > before.restarts && now.ready ? true : undefined;
        },
        { description: 'the gateway container restarted and ready', timeoutMs: 120_000, intervalMs: 250 },
      );
    };
    const agent = new Agent({ keepAlive: true });
    let pollRetries = 0;
    // As a device program does: patient with an entry point that is briefly away.
    const retry = { maxAttempts: 40, baseDelayMs: 250, maxDelayMs: 2000 };
    const admin = new MeshworkClient({ baseUrl: entry(), token: adminToken, retry });
    const user = await admin.createUser('gateway-restart');
    const device = await new MeshworkClient({
      baseUrl: entry(),
      token: user.token,
      fetch: nodeHttpFetch(agent),
      retry,
      onRetry: (info) => void (info.path.startsWith('/v1/notifications') && pollRetries++),
    }).registerDeviceClient('laptop');
    const objectId = (await device.createObject({ name: 'gateway-restart' })).id;
    try {
      // A download: the gateway's container dies a quarter in.
      const content = randomBytes(32 * MiB);
      await device.upload(objectId, 'big.bin', content, { ifNoneMatch: '*' });
      const got = await downloadInterrupted(device, objectId, 'big.bin', 8 * MiB, killGateway);
      expect(got.interrupted).toBe(true);
      expect(got.bytes).toBe(content.length);
      expect(got.received).toBe(content.length);
      expect(got.sha256).toBe(createHash('sha256').update(content).digest('hex'));

      // A long poll: it waits in the gateway when the container dies; the watch polls again with
      // its cursor and sees a commit made once the gateway is back.
      const controller = new AbortController();
      const watch = device.watchNotifications({ wait: 30, signal: controller.signal });
      const iterator: AsyncIterator<Notifications, undefined> = watch[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.value?.objects.map((o) => o.id)).toContain(objectId);
      const cursor = watch.cursor;
      const next = iterator.next();
      const retriesBefore = pollRetries;
      await killGateway();
      await device.putEntry(objectId, 'after-restart', { kind: 'directory' }, { ifNoneMatch: '*' });
      const seen = await next;
      controller.abort();
      expect(seen.done).toBe(false);
      expect(seen.value!.objects.map((o) => o.id)).toContain(objectId);
      expect(seen.value!.cursor).not.toBe(cursor);
      // The poll that was waiting did not answer: the client sent it again.
      expect(pollRetries).toBeGreaterThan(retriesBefore);
    } finally {
      agent.destroy();
    }
  });

  it(
    'stops without leaving a process or a network, and comes back with its data, from the image (make up IMAGE=1)',
    { timeout: 3 * upTimeoutMs },
    async () => {
      // Data of every kind: a user, a device, an object, a file's blocks, the Mesh.
      const adminToken = Buffer.from(
        kubectl('get', 'secret', `${state.mesh.name}-admin`, '-n', state.mesh.namespace, '-o', 'jsonpath={.data.token}'),
        'base64',
      ).toString('utf8');
      const admin = new MeshworkClient({ baseUrl: entry(), token: adminToken });
      const user = await admin.createUser('restart');
      const device = await admin.as(user.token).registerDeviceClient('laptop');
      const object = await device.createObject({ name: 'kept', cloudStorage: true });
      const content = randomBytes(300_000);
      await device.upload(object.id, 'dir/file.bin', content, { ifNoneMatch: '*' }, { blockSize: 65_536 });
      // The gateway and the members export their spans to the stack's Jaeger.
      const services = async (): Promise<string[]> =>
        ((await (await fetch(`${state.jaeger!.ui}/api/services`)).json()) as { data: string[] | null }).data ?? [];
      await waitFor(
        async () => ((await services()).includes('meshwork-partition') && (await services()).includes('meshwork-gateway')) || undefined,
        {
          description: "the gateway's and the members' spans in Jaeger",
          timeoutMs: 60_000,
        },
      );

      const gatewayBefore = state.mesh.gateway;
      const running = processesMentioning(dir);
      // supervisor, 2 etcd, MinIO, Jaeger, Prometheus, apiserver, controller manager, scheduler, 2 operators, 4 members, a gateway
      expect(running.length).toBeGreaterThanOrEqual(15);
      const stopped = down();
      expect(stopped.status, stopped.stderr).toBe(0);
      expect(stopped.stdout).toContain('Stopped');
      // Asked again rather than by pid: on a busy machine a pid can be reused meanwhile.
      expect(describeProcesses(processesMentioning(dir))).toEqual([]);
      expect(readState(dir)).toBeUndefined();
      const block = readSettings(dir)?.block;
      if (networked) {
        expect(block).toBeDefined();
        expect(leftovers(block!)).toEqual([]);
      }

      // The image, built as make image does (as root, like this test); the stack comes back with its pods run from it.
      execFileSync('bash', ['image/build.sh'], {
        cwd: repoRoot,
        env: { ...process.env, IMAGE_DIST: join(dir, 'dist'), IMAGE_WORK: join(dir, 'image-work') },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 420_000,
      });
      const prometheusBefore = state.prometheus;
      const again = up('--image', `${join(dir, 'dist', 'oci')}:${version}`);
      expect(again.status, again.stderr).toBe(0);
      state = readState(dir)!;
      expect(readSettings(dir)?.block).toBe(block);
      // Jaeger is back at the same address (its traces were in memory).
      expect((await fetch(`${state.jaeger!.ui}/api/services`)).status).toBe(200);
      // Prometheus comes back on the same address.
      expect(state.prometheus).toBe(prometheusBefore);
      expect(state.image?.digest).toBe(readFileSync(join(dir, 'dist', 'digest'), 'utf8').trim());
      expect(again.stdout).toContain(`pods run meshwork/meshwork:${version} (${state.image!.digest}) from its root filesystem`);
      // Every member and the operator run the image's Node and the image's /app.
      const fromImage = processesMentioning(join(state.image!.rootfs, 'app', 'meshwork.ts'));
      const roles = fromImage.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[2]).sort();
      expect(roles.filter((r) => r === 'partition')).toHaveLength(4);
      expect(roles).toContain('operator');
      expect(roles).toContain('gateway');
      for (const pid of fromImage) expect(readlinkSync(`/proc/${pid}/exe`)).toBe(join(state.image!.rootfs, 'usr/local/bin/node'));
      // Through the gateway, at the address it had before.
      expect(state.mesh.gateway).toBe(gatewayBefore);
      const reader = new MeshworkClient({ baseUrl: entry(), token: device.token });
      expect((await reader.me()).id).toBe(user.id);
      expect((await reader.listObjects()).map((o) => o.id)).toContain(object.id);
      const answer = await reader.content(object.id, 'dir/file.bin');
      expect(answer.status).toBe(200);
      expect(Buffer.from(await new Response(answer.body).arrayBuffer()).equals(content)).toBe(true);

      // make reset: nothing left, not even the data.
      const reset = down('--wipe');
      expect(reset.status, reset.stderr).toBe(0);
      expect(describeProcesses(processesMentioning(dir))).toEqual([]);
      if (networked) expect(leftovers(block!)).toEqual([]);
      expect(readdirSync(tmpdir())).not.toContain(dir.split('/').pop());
      dir = '';
    },
  );
});
