// The chart lints strictly, renders objects the real API server accepts for every values
// file in ci/, keeps its CRDs and RBAC identical to crds/, and refuses values that break its schema.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../harness/binaries.ts';
import { adminKubeConfig } from '../harness/stack.ts';
import { waitFor } from '../harness/wait.ts';
import { chartDir, mustRun, runTool } from '../harness/commands.ts';

const stack = inject('stack');
const kubeconfig = stack.controlPlane.adminKubeconfig;
const ciFiles = readdirSync(join(chartDir, 'ci')).filter((f) => f.endsWith('.yaml'));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: unknown;
  rules?: unknown;
}

async function render(args: string[] = []): Promise<K8sObject[]> {
  const out = await mustRun('helm', ['template', 'mw', chartDir, '--namespace', 'meshwork-system', ...args]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

describe('the Helm chart', () => {
  beforeAll(async () => {
    const kc = adminKubeConfig(stack);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of ['meshwork-system', 'tenant-a']) {
      await core.createNamespace({ body: { metadata: { name } } }).catch(() => undefined);
    }
    // prometheus-operator's kinds, so that its monitors and PrometheusRule can be dry-run:
    // the real CRDs are not available here, so these accept any spec.
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    for (const [kind, plural] of [
      ['ServiceMonitor', 'servicemonitors'],
      ['PodMonitor', 'podmonitors'],
      ['PrometheusRule', 'prometheusrules'],
    ] as const) {
      await ext
        .createCustomResourceDefinition({
          body: {
            metadata: { name: `${plural}.monitoring.coreos.com` },
            spec: {
              group: 'monitoring.coreos.com',
              scope: 'Namespaced',
              names: { kind, plural, singular: kind.toLowerCase() },
              versions: [
                {
                  name: 'v1',
                  served: true,
                  storage: true,
                  schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
                },
              ],
            },
          },
        })
        .catch(() => undefined);
      await waitFor(
        async () =>
          (await ext.readCustomResourceDefinition({ name: `${plural}.monitoring.coreos.com` })).status?.conditions?.some(
            (c) => c.type === 'Established' && c.status === 'True',
          ),
        { description: `${kind} CRD to be established`, timeoutMs: 30_000 },
      );
    }
  });

  it('passes helm lint --strict with the defaults and every ci/ values file', async () => {
    for (const file of [undefined, ...ciFiles]) {
      const args = file ? ['--values', join(chartDir, 'ci', file)] : [];
      const result = await runTool('helm', ['lint', '--strict', chartDir, ...args]);
      expect(result.status, `${file ?? 'defaults'}: ${result.stdout}${result.stderr}`).toBe(0);
    }
  });

  it.each(['the defaults', ...ciFiles])('renders objects the API server accepts with server-side dry run (%s)', async (file) => {
    const args = file.endsWith('.yaml') ? ['--values', join(chartDir, 'ci', file)] : [];
    const manifest = await mustRun('helm', ['template', 'mw', chartDir, '--namespace', 'meshwork-system', ...args]);
    const result = await runTool('kubectl', ['apply', '--dry-run=server', '--server-side', '--field-manager=helm-check', '-f', '-'], {
      input: manifest,
      kubeconfig,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/deployment\.apps\/mw-meshwork serverside-applied \(server dry run\)/);
  });

  it('ships exactly the CRDs of crds/, kept on uninstall', async () => {
    const stale = spawnSync(process.execPath, [join(repoRoot, 'charts', 'sync-crds.ts'), '--check'], { encoding: 'utf8' });
    expect(stale.status, stale.stderr).toBe(0);
    const rendered = (await render()).filter((o) => o.kind === 'CustomResourceDefinition');
    const files = readdirSync(join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml'));
    expect(rendered).toHaveLength(files.length);
    for (const file of files) {
      const source = parseAllDocuments(readFileSync(join(repoRoot, 'crds', file), 'utf8'))[0]!.toJS() as K8sObject;
      const shipped = rendered.find((o) => o.metadata.name === source.metadata.name)!;
      expect(shipped.spec).toEqual(source.spec);
      expect(shipped.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    }
    expect((await render(['--set', 'crds.create=false'])).some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
  });

  it('grants exactly the rules of crds/rbac/operator.yaml, cluster-wide or in one namespace', async () => {
    const shipped = parseAllDocuments(readFileSync(join(repoRoot, 'crds', 'rbac', 'operator.yaml'), 'utf8')).map(
      (d) => d.toJS() as K8sObject,
    );
    const named = (objects: K8sObject[], kind: string, suffix: string): K8sObject | undefined =>
      objects.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix));
    const clusterRules = named(shipped, 'ClusterRole', 'meshwork-operator')!.rules;
    const nodeRules = named(shipped, 'ClusterRole', '-nodes')!.rules;
    const leaderRules = named(shipped, 'Role', '-leader-election')!.rules;
    const leaseRules = named(shipped, 'Role', '-node-leases')!.rules;
    const cluster = await render();
    expect(named(cluster, 'ClusterRole', 'meshwork')?.rules).toEqual(clusterRules);
    expect(named(cluster, 'ClusterRole', '-nodes')?.rules).toEqual(nodeRules);
    expect(named(cluster, 'Role', '-leader-election')?.rules).toEqual(leaderRules);
    expect(named(cluster, 'Role', '-node-leases')?.rules).toEqual(leaseRules);
    expect(named(cluster, 'Role', '-node-leases')?.metadata.namespace).toBe('kube-node-lease');
    const namespaced = await render(['--values', join(chartDir, 'ci', 'namespaced-values.yaml')]);
    // Nodes are cluster-scoped: the watchdog's node rules are the only cluster-wide grant left.
    expect(namespaced.filter((o) => o.kind === 'ClusterRole').map((o) => o.rules)).toEqual([nodeRules]);
    expect(namespaced.filter((o) => o.kind === 'ClusterRoleBinding')).toHaveLength(1);
    const tenantRole = namespaced.find((o) => o.kind === 'Role' && o.metadata.namespace === 'tenant-a');
    expect(tenantRole?.rules).toEqual(clusterRules);
  });

  it('documents every value in its README', () => {
    const values = parseAllDocuments(readFileSync(join(chartDir, 'values.yaml'), 'utf8'))[0]!.toJS() as Record<string, unknown>;
    const leaves = (node: unknown, path: string[]): string[] =>
      node !== null && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0
        ? Object.entries(node).flatMap(([k, v]) => leaves(v, [...path, k]))
        : [path.join('.')];
    const readme = readFileSync(join(chartDir, 'README.md'), 'utf8');
    // A free-form value (resources, affinity) is documented as a whole.
    const documented = (path: string): boolean =>
      path.split('.').some((_, i, parts) => readme.includes(`| \`${parts.slice(0, i + 1).join('.')}\` |`));
    const missing = leaves(values, []).filter((path) => !documented(path));
    expect(missing).toEqual([]);
  });

  it('ships the generated dashboards and alerts only when asked, with the sidecar label', async () => {
    const none = await render();
    expect(none.filter((o) => o.kind === 'ConfigMap' || o.kind === 'PrometheusRule' || o.kind === 'PodMonitor')).toEqual([]);
    const on = await render(['--values', join(chartDir, 'ci', 'monitoring-values.yaml')]);
    const maps = on.filter((o) => o.kind === 'ConfigMap') as (K8sObject & {
      metadata: { labels?: Record<string, string> };
      data: Record<string, string>;
    })[];
    const files = readdirSync(join(chartDir, 'dashboards')).filter((f) => f.endsWith('.json'));
    expect(maps).toHaveLength(files.length);
    for (const file of files) {
      const map = maps.find((m) => m.metadata.name === `mw-meshwork-dashboard-${file.replace(/\.json$/, '')}`)!;
      expect(map.metadata.labels?.grafana_dashboard).toBe('1');
      expect(JSON.parse(map.data[`meshwork-${file}`]!)).toEqual(JSON.parse(readFileSync(join(chartDir, 'dashboards', file), 'utf8')));
    }
    const rule = on.find((o) => o.kind === 'PrometheusRule')!;
    const source = parseAllDocuments(readFileSync(join(chartDir, 'alerts', 'meshwork.rules.yaml'), 'utf8'))[0]!.toJS() as unknown;
    expect(rule.spec).toEqual(source);
    expect(on.some((o) => o.kind === 'PodMonitor')).toBe(true);
  });

  it('never puts the chart version in a selector', async () => {
    for (const o of await render()) {
      const selector = JSON.stringify((o.spec as { selector?: unknown } | undefined)?.selector ?? {});
      expect(selector).not.toContain('version');
      expect(selector).not.toContain('helm.sh/chart');
    }
  });

  it.each([
    [['--set', 'operator.replicas=0'], "at '/operator/replicas': minimum: got 0, want 1"],
    [['--set', 'rbac.scope=everywhere'], "at '/rbac/scope': value must be one of 'cluster', 'namespace'"],
    [['--set-string', 'operator.concurrency=eight'], "at '/operator/concurrency': got string, want integer"],
    [['--set', 'operator.replicaz=2'], "at '/operator': additional properties 'replicaz' not allowed"],
  ])('refuses values that break the schema (%j) before rendering anything', async (args, message) => {
    const result = await runTool('helm', ['template', 'mw', chartDir, ...args]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });
});
