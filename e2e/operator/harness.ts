// Test helpers for running the operator as a real process against a real control plane:
// kubectl, the CRDs and RBAC manifests, the operator process and its metrics.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot, requireBinary } from '../harness/binaries.ts';
import { mintServiceAccountKubeconfig } from '../harness/controlplane.ts';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the pinned kubectl with `kubeconfig`, optionally feeding `input` on stdin. */
export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<KubectlResult> {
  const child = spawn(requireBinary('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input ?? '');
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? -1));
  });
  return { code, stdout, stderr };
}

/** Like kubectl(), but throws unless it succeeded; resolves with its stdout. */
export async function kubectlOk(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const result = await kubectl(kubeconfig, args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/** A repository file's text. */
export function repoFile(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

/** The CRDs the operator serves, as `kind`, resource name and file under crds/. */
const crds = [
  { kind: 'MeshPartition', plural: 'meshpartitions' },
  { kind: 'Mesh', plural: 'meshes' },
].map((c) => ({ ...c, file: join(repoRoot, `crds/meshwork.io_${c.plural}.yaml`) }));

/** Installs every CRD (server-side, so concurrent test files agree) and waits until each is served. */
export async function installCrds(kubeconfig: string): Promise<void> {
  await kubectlOk(kubeconfig, ['apply', '--server-side', '--force-conflicts', ...crds.flatMap((c) => ['-f', c.file])]);
  await kubectlOk(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', ...crds.map((c) => `crd/${c.plural}.meshwork.io`)]);
  for (const crd of crds) {
    await waitFor(async () => (await kubectl(kubeconfig, ['get', crd.plural, '-A'])).code === 0, {
      description: `the ${crd.kind} resource to be served`,
      timeoutMs: 30_000,
    });
  }
}

/**
 * The shipped RBAC manifest moved to `namespace` with cluster-scoped names suffixed by
 * `suffix`, so test files sharing a control plane do not overwrite each other's bindings.
 */
export function rbacManifest(
  namespace: string,
  suffix: string,
  transform: (doc: Record<string, unknown>) => void = () => undefined,
): string {
  const docs = parseAllDocuments(repoFile('crds/rbac/operator.yaml')).map((d) => d.toJS() as Record<string, unknown>);
  const home = 'meshwork-system';
  for (const doc of docs) {
    const meta = doc.metadata as { name: string; namespace?: string };
    // Objects in other namespaces (the node Leases' Role) stay there, with a suffixed name.
    if (meta.namespace === home) meta.namespace = namespace;
    else if (meta.namespace) meta.name = `${meta.name}-${suffix}`;
    if (doc.kind === 'ClusterRole' || doc.kind === 'ClusterRoleBinding') meta.name = `${meta.name}-${suffix}`;
    const roleRef = doc.roleRef as { kind: string; name: string } | undefined;
    if (roleRef && (roleRef.kind === 'ClusterRole' || meta.namespace !== namespace)) roleRef.name = `${roleRef.name}-${suffix}`;
    for (const subject of (doc.subjects as { namespace?: string }[] | undefined) ?? []) subject.namespace = namespace;
    transform(doc);
  }
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

export interface OperatorProcess {
  process: ManagedProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The operator's metrics text. */
  metrics(): Promise<string>;
  /** Sum of a metric's samples whose labels include every given label. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Sum of the samples of `name` in Prometheus text whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labelText = match[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(match[2]);
  }
  return sum;
}

/** API writes the operator made, by its own count (leader Lease renewals excluded). */
export function reconcileWrites(text: string): number {
  const writes = ['create', 'update', 'apply', 'patch', 'delete'];
  return writes.reduce((n, verb) => n + sumMetric(text, 'meshwork_kube_api_requests_total', { verb }), 0) - leaseWrites(text);
}

/** Waits until the operator's write count stops moving between two samples `intervalMs` apart. */
export async function waitForWritesToSettle(
  operator: OperatorProcess,
  options: { description: string; timeoutMs: number; intervalMs: number },
): Promise<void> {
  let last = -1;
  await waitFor(async () => {
    const writes = reconcileWrites(await operator.metrics());
    const stable = writes === last;
    last = writes;
    return stable;
  }, options);
}

/** Writes to the leader Lease (creates and renewals). */
export function leaseWrites(text: string): number {
  return ['create', 'update'].reduce((n, verb) => n + sumMetric(text, 'meshwork_kube_api_requests_total', { verb, resource: 'leases' }), 0);
}

export interface StartOperatorOptions {
  kubeconfig: string;
  /** Namespace of the leader Lease. */
  namespace: string;
  /** Namespace whose MeshPartitions it reconciles. */
  watchNamespace: string;
  logFile: string;
  leaseName?: string;
  identity?: string;
  extraEnv?: Record<string, string>;
}

/** Starts `node operator/src/main.ts` and waits until it answers /readyz. */
export async function startOperator(options: StartOperatorOptions): Promise<OperatorProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const process_ = ManagedProcess.start({
    component: `operator ${options.identity ?? ''}`.trim(),
    binary: process.execPath,
    args: [join(repoRoot, 'operator/src/main.ts')],
    logFile: options.logFile,
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: options.kubeconfig,
      MESHWORK_OPERATOR_NAMESPACE: options.namespace,
      MESHWORK_OPERATOR_WATCH_NAMESPACE: options.watchNamespace,
      MESHWORK_OPERATOR_HTTP_ADDRESS: `127.0.0.1:${port}`,
      MESHWORK_OPERATOR_LEASE_NAME: options.leaseName ?? 'meshwork-operator',
      ...(options.identity ? { MESHWORK_OPERATOR_IDENTITY: options.identity } : {}),
      ...options.extraEnv,
    },
  });
  await process_.waitReady(
    async () => {
      const res = await fetch(`${url}/readyz`);
      return res.status === 200;
    },
    { timeoutMs: 60_000, what: 'to answer /readyz' },
  );
  const metrics = async (): Promise<string> => (await fetch(`${url}/metrics`)).text();
  return { process: process_, url, metrics, metric: async (name, labels) => sumMetric(await metrics(), name, labels) };
}

/** `kubectl get -o json` in one namespace: `getJson` fails when the object is missing, `tryGet` answers undefined. */
export function namespacedGetters(
  kubeconfig: string,
  namespace: string,
): { getJson: <T>(...args: string[]) => Promise<T>; tryGet: <T>(...args: string[]) => Promise<T | undefined> } {
  return {
    getJson: async <T>(...args: string[]): Promise<T> =>
      JSON.parse(await kubectlOk(kubeconfig, ['get', '-n', namespace, '-o', 'json', ...args])) as T,
    tryGet: async <T>(...args: string[]): Promise<T | undefined> => {
      const result = await kubectl(kubeconfig, ['get', '-n', namespace, '-o', 'json', ...args]);
      return result.code === 0 ? (JSON.parse(result.stdout) as T) : undefined;
    },
  };
}

/** Where a test runs the operator: its own namespace (Lease, ServiceAccount) and the one it watches, named apart by `suffix`. */
export interface OperatorTestNamespaces {
  admin: string;
  suffix: string;
  operatorNamespace: string;
  namespace: string;
}

/**
 * Installs the CRDs, creates both namespaces and the shipped RBAC, and starts the operator
 * authenticated as its ServiceAccount, watching `namespace`.
 */
export async function startOperatorUnderRbac(setup: OperatorTestNamespaces, logFile: string): Promise<OperatorProcess> {
  const { admin, suffix, operatorNamespace, namespace } = setup;
  await installCrds(admin);
  await kubectlOk(admin, ['create', 'namespace', operatorNamespace]);
  await kubectlOk(admin, ['create', 'namespace', namespace]);
  await kubectlOk(admin, ['apply', '-f', '-'], rbacManifest(operatorNamespace, suffix));
  const kubeconfig = await mintServiceAccountKubeconfig(admin, operatorNamespace, 'meshwork-operator');
  return startOperator({
    kubeconfig,
    namespace: operatorNamespace,
    watchNamespace: namespace,
    logFile,
    leaseName: `meshwork-operator-${suffix}`,
  });
}

/** Stops the operator (if it started) and deletes the namespaces and cluster RBAC that startOperatorUnderRbac created. */
export async function stopOperatorUnderRbac(setup: OperatorTestNamespaces, operator: OperatorProcess | undefined): Promise<void> {
  const { admin, suffix, operatorNamespace, namespace } = setup;
  await operator?.process.stop();
  await kubectl(admin, ['delete', 'namespace', namespace, operatorNamespace, '--wait=false']);
  await kubectl(admin, ['delete', 'clusterrole,clusterrolebinding', `meshwork-operator-${suffix}`, `meshwork-operator-nodes-${suffix}`]);
}
