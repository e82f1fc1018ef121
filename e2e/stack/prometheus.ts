// The local stack's Prometheus: it discovers every Meshwork pod through the stack's API server
// (`kubernetes_sd_configs`, role pod) as a ServiceAccount that may only list and watch pods,
// evaluates Meshwork's alert rules, and keeps its data and its port across make down / make up
// (the port in settings.json, the TSDB in .cache/stack/prometheus).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { repoRoot } from '../harness/binaries.ts';
import { mustRun } from '../harness/commands.ts';
import { freePorts } from '../harness/ports.ts';
import { startPrometheus } from '../harness/prometheus.ts';
import { waitFor } from '../harness/wait.ts';
import { settingsFile, type StackSettings } from './state.ts';

/** Where Prometheus' ServiceAccount lives, and its name. */
export const prometheusNamespace = 'meshwork-monitoring';
export const prometheusServiceAccount = 'prometheus';
const tokenSecret = 'prometheus-token';

/**
 * Least privilege for pod discovery: list and watch pods, in every namespace (a Mesh may be in
 * any), and nothing else. The token is a long-lived ServiceAccount token Secret, filled in by
 * the controller manager, so that it outlives make down / make up like the rest of the cluster.
 */
export function prometheusRbacManifest(): string {
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: prometheusNamespace } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: prometheusServiceAccount, namespace: prometheusNamespace } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'meshwork-local-prometheus' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'meshwork-local-prometheus' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'meshwork-local-prometheus' },
      subjects: [{ kind: 'ServiceAccount', name: prometheusServiceAccount, namespace: prometheusNamespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: {
        name: tokenSecret,
        namespace: prometheusNamespace,
        annotations: { 'kubernetes.io/service-account.name': prometheusServiceAccount },
      },
    },
  ];
  return objects.map((o) => JSON.stringify(o)).join('\n---\n');
}

/** Applies the ServiceAccount and its RBAC, and writes its token (once the controller manager made it) to `tokenFile`. */
async function serviceAccountToken(kubeconfig: string, tokenFile: string): Promise<void> {
  await mustRun('kubectl', ['apply', '-f', '-'], { kubeconfig, input: prometheusRbacManifest() });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const token = await waitFor(
    async () => {
      const secret = await core.readNamespacedSecret({ name: tokenSecret, namespace: prometheusNamespace });
      const value = secret.data?.token;
      return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
    },
    { description: `the controller manager to fill in Secret ${prometheusNamespace}/${tokenSecret}`, timeoutMs: 60_000, intervalMs: 250 },
  );
  await writeFile(tokenFile, token, { mode: 0o600 });
}

/**
 * Starts the stack's Prometheus on `host`, on a port chosen free by the first start and kept in
 * settings (not 9090: another Prometheus on the machine may hold it).
 */
export async function startStackPrometheus(options: {
  dir: string;
  host: string;
  settings: StackSettings;
  kubeconfig: string;
  apiServer: string;
  caFile: string;
}): Promise<{ url: string; stop(): Promise<void> }> {
  const { settings } = options;
  if (settings.ports.prometheus === undefined) {
    settings.ports.prometheus = (await freePorts(1, options.host))[0]!;
    await writeFile(settingsFile(options.dir), JSON.stringify(settings, null, 2));
  }
  const dataDir = join(options.dir, 'prometheus');
  await mkdir(dataDir, { recursive: true });
  const tokenFile = join(dataDir, 'token');
  await serviceAccountToken(options.kubeconfig, tokenFile);
  const prometheus = await startPrometheus({
    dataDir,
    host: options.host,
    port: settings.ports.prometheus,
    kubernetes: { apiServer: options.apiServer, caFile: options.caFile, tokenFile },
    scrapeInterval: '5s',
    ruleFiles: [join(repoRoot, 'charts', 'meshwork', 'alerts', 'meshwork.rules.yaml')],
  });
  return { url: prometheus.url, stop: () => prometheus.stop() };
}
