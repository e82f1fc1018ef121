// The committed CRD files are what the definition in v1alpha1.ts generates (the drift check),
// the chart's copy is the same CRD, and the definitions agree with the fixtures and the samples.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { sampleMesh, samplePartition } from './fixtures.ts';
import { chartCrdDir, customResourceDefinitions, generatedCrdFiles } from './crd.ts';
import { meshOpenApiSchema, meshPartitionOpenApiSchema, throttlingDefaults, watchdogSpecDefaults } from './v1alpha1.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const committed = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Schema {
  properties?: Record<string, Schema>;
  items?: Schema;
  default?: unknown;
  'x-kubernetes-validations'?: { rule: string; message: string }[];
}

describe('the committed CRD files', () => {
  it.each([...generatedCrdFiles()])('%s is what operator/src/api/v1alpha1.ts generates', (path, text) => {
    expect(
      committed(path),
      `${path} differs from the CRD that operator/src/api/v1alpha1.ts defines: run make crds and commit the result`,
    ).toBe(text);
  });

  it('cover crds/ and the chart: one file of each per CRD', () => {
    const paths = [...generatedCrdFiles().keys()];
    for (const crd of customResourceDefinitions()) {
      expect(paths).toContain(`crds/${crd.file}`);
      expect(paths).toContain(`${chartCrdDir}/${crd.file}`);
    }
  });

  it('ship the same CRD to the chart, behind crds.create and kept on uninstall', () => {
    for (const crd of customResourceDefinitions()) {
      const lines = committed(`${chartCrdDir}/${crd.file}`).trimEnd().split('\n');
      expect(lines[0]).toBe('{{- if .Values.crds.create }}');
      expect(lines.at(-1)).toBe('{{- end }}');
      const shipped = parse(lines.slice(1, -1).join('\n')) as { metadata: { annotations: Record<string, string> } };
      expect(shipped.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      const withoutAnnotations = structuredClone(shipped) as { metadata: { annotations?: unknown } };
      delete withoutAnnotations.metadata.annotations;
      expect(withoutAnnotations).toEqual(parse(committed(`crds/${crd.file}`)));
    }
  });
});

describe('the MeshPartition definition', () => {
  const schema = meshPartitionOpenApiSchema() as Schema;
  const spec = schema.properties!.spec!;

  it('gives every CEL rule a message, and words range rules with the field they are on', () => {
    const rules: { path: string; rule: string; message: string }[] = [];
    const walk = (node: Schema, path: string): void => {
      for (const v of node['x-kubernetes-validations'] ?? []) rules.push({ path, ...v });
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, path ? `${path}.${name}` : name);
      if (node.items) walk(node.items, path);
    };
    walk(spec, '');
    expect(rules.length).toBeGreaterThan(20);
    for (const { path, rule, message } of rules) {
      expect(message, rule).not.toBe('');
      const rangeRule = /^self >= \d+( && self <= \d+)?$/.test(rule) || rule.startsWith('isQuantity');
      if (rangeRule) expect(message.startsWith(`${path} must be`), `${path}: ${message}`).toBe(true);
    }
  });

  it('defaults spec.watchdog as a whole to the same values as field by field', () => {
    const watchdog = spec.properties!.watchdog!;
    expect(watchdog.default).toEqual(watchdogSpecDefaults);
    expect(Object.fromEntries(Object.entries(watchdog.properties!).map(([k, v]) => [k, v.default]))).toEqual(watchdogSpecDefaults);
  });

  it("gives the test fixture exactly the CRD's defaults", () => {
    const fixture = samplePartition().spec;
    expect(fixture.throttling).toEqual(throttlingDefaults);
    expect(fixture.watchdog).toEqual(watchdogSpecDefaults);
    expect(fixture).toMatchObject({ replicas: 3, resources: { cpu: '2', memory: '8Gi' }, storage: { volumes: 4, size: '100Gi' } });
    expect(fixture.rollout).toBeUndefined();
  });

  it('knows every field of the sample in crds/samples/', () => {
    const sample = parse(committed('crds/samples/meshpartition.yaml')) as { spec: unknown };
    const unknown: string[] = [];
    const walk = (value: unknown, node: Schema, path: string): void => {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, node.items ?? {}, `${path}[${i}]`));
      else if (value !== null && typeof value === 'object' && node.properties) {
        for (const [k, v] of Object.entries(value)) {
          const child = node.properties[k];
          if (child === undefined) unknown.push(`${path}.${k}`);
          else walk(v, child, `${path}.${k}`);
        }
      }
    };
    walk(sample.spec, spec, 'spec');
    expect(unknown).toEqual([]);
  });
});

describe('the Mesh definition', () => {
  const schema = meshOpenApiSchema() as Schema;
  const spec = schema.properties!.spec!;

  it('passes partitions the same stores, throttling, watchdog, resources and storage schema as a MeshPartition has', () => {
    const partitionSpec = (meshPartitionOpenApiSchema() as Schema).properties!.spec!;
    const stores = { ...(spec.properties!.stores as Schema & { description?: string }) };
    delete stores.description;
    expect(stores).toEqual(partitionSpec.properties!.stores);
    for (const field of ['throttling', 'watchdog', 'resources', 'storage']) {
      expect(spec.properties![field], field).toEqual(partitionSpec.properties![field]);
    }
  });

  it('bounds the name so that partition names stay short, and gives every rule a message', () => {
    expect(schema['x-kubernetes-validations']).toEqual([
      { rule: 'self.metadata.name.size() <= 40', message: expect.stringContaining('at most 40 characters') as unknown },
    ]);
    const walk = (node: Schema): void => {
      for (const v of node['x-kubernetes-validations'] ?? []) expect(v.message, v.rule).not.toBe('');
      for (const child of Object.values(node.properties ?? {})) walk(child);
      if (node.items) walk(node.items);
    };
    walk(schema);
  });

  it("gives the test fixture exactly the CRD's defaults", () => {
    expect(sampleMesh().spec).toMatchObject({
      partitions: 1,
      replicasPerPartition: 3,
      throttling: throttlingDefaults,
      watchdog: watchdogSpecDefaults,
      gateway: { replicas: 2, resources: { cpu: '1', memory: '1Gi' }, service: { type: 'ClusterIP' } },
    });
  });

  it('knows every field of the sample in crds/samples/', () => {
    const sample = parse(committed('crds/samples/mesh.yaml')) as { kind: string; spec: unknown };
    expect(sample.kind).toBe('Mesh');
    const unknown: string[] = [];
    const walk = (value: unknown, node: Schema, path: string): void => {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, node.items ?? {}, `${path}[${i}]`));
      else if (value !== null && typeof value === 'object' && node.properties) {
        for (const [k, v] of Object.entries(value)) {
          const child = node.properties[k];
          if (child === undefined) unknown.push(`${path}.${k}`);
          else walk(v, child, `${path}.${k}`);
        }
      }
    };
    walk(sample.spec, spec, 'spec');
    expect(unknown).toEqual([]);
  });
});
