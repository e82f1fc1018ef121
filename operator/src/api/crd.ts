// The CustomResourceDefinitions and the files `make crds` writes from them: crds/*.yaml for
// `kubectl apply`, and the Helm chart's copies behind `crds.create` with
// helm.sh/resource-policy: keep (ADR 21). Pure: it returns file contents and writes nothing,
// so the drift test can compare them with the committed files.
import { Document, isPair, isScalar, visit } from 'yaml';
import { MeshworkError } from '@meshwork/contract';
import {
  group,
  meshKind,
  meshOpenApiSchema,
  meshPlural,
  meshPrinterColumns,
  meshPartitionKind,
  meshPartitionOpenApiSchema,
  meshPartitionPlural,
  meshPartitionPrinterColumns,
  meshPartitionScale,
  version,
} from './v1alpha1.ts';

/** The source file of every generated CRD, named in the generated files' headers. */
export const crdSource = 'operator/src/api/v1alpha1.ts';
/** The chart's CRD templates, relative to the repository root. */
export const chartCrdDir = 'charts/meshwork/templates/crds';

/** Raised when a generated CRD would not survive as a Helm template. */
export class CrdTemplateError extends MeshworkError {
  constructor(message: string) {
    super('crd_template_invalid', message);
  }
}

/** One CRD with the file it lives in under crds/ and the comment that opens that file. */
export interface CrdDefinition {
  file: string;
  comment: string;
  object: Record<string, unknown> & { metadata: { name: string; labels: Record<string, string>; annotations?: Record<string, string> } };
}

interface CrdParts {
  kind: string;
  plural: string;
  shortNames?: string[];
  comment: string;
  subresources: Record<string, unknown>;
  printerColumns: readonly Record<string, unknown>[];
  schema: Record<string, unknown>;
}

function crd(parts: CrdParts): CrdDefinition {
  return {
    file: `${group}_${parts.plural}.yaml`,
    comment: parts.comment,
    object: {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: {
        name: `${parts.plural}.${group}`,
        labels: { 'app.kubernetes.io/name': 'meshwork', 'app.kubernetes.io/component': 'crd' },
      },
      spec: {
        group,
        scope: 'Namespaced',
        names: {
          kind: parts.kind,
          listKind: `${parts.kind}List`,
          plural: parts.plural,
          singular: parts.kind.toLowerCase(),
          ...(parts.shortNames ? { shortNames: parts.shortNames } : {}),
          categories: ['meshwork'],
        },
        versions: [
          {
            name: version,
            served: true,
            storage: true,
            subresources: parts.subresources,
            additionalPrinterColumns: parts.printerColumns.map((c) => ({ ...c })),
            schema: { openAPIV3Schema: parts.schema },
          },
        ],
      },
    },
  };
}

/** Every CustomResourceDefinition Meshwork ships. */
export function customResourceDefinitions(): CrdDefinition[] {
  return [
    crd({
      kind: meshPartitionKind,
      plural: meshPartitionPlural,
      shortNames: ['mp'],
      comment: [
        'MeshPartition: one slice of the slot space, served by a StatefulSet of symmetric',
        'data-plane pods. The operator reconciles it; see docs/operations.md.',
      ].join('\n'),
      subresources: { status: {}, scale: { ...meshPartitionScale } },
      printerColumns: meshPartitionPrinterColumns,
      schema: meshPartitionOpenApiSchema(),
    }),
    crd({
      kind: meshKind,
      plural: meshPlural,
      comment: [
        'Mesh: the whole service. The operator creates its MeshPartitions with an even slot',
        'layout and the gateway in front of them; see docs/adr/0033-mesh-resource.md.',
      ].join('\n'),
      subresources: { status: {} },
      printerColumns: meshPrinterColumns,
      schema: meshOpenApiSchema(),
    }),
  ];
}

// Short lists of scalars ([spec], [Enforce, Observe]) and anyOf read better on one line.
function toYaml(object: unknown, header: string): string {
  const doc = new Document(object);
  visit(doc, {
    Seq(_key, seq, path) {
      const parent = path.at(-1);
      const anyOf = isPair(parent) && isScalar(parent.key) && parent.key.value === 'anyOf';
      if (anyOf || seq.items.every((item) => isScalar(item))) seq.flow = true;
    },
  });
  doc.commentBefore = header;
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false, singleQuote: true });
}

const generatedNote = ` Generated from ${crdSource} by \`make crds\`: edit that file, not this one.`;

function commented(comment: string): string {
  return comment
    .split('\n')
    .map((line) => ` ${line}`)
    .join('\n');
}

/** The text of crds/<file>: the CRD for `kubectl apply`. */
export function crdFileText(crd: CrdDefinition): string {
  return toYaml(crd.object, `${generatedNote}\n${commented(crd.comment)}`);
}

/** The text of the chart's template for the CRD: the same object behind `crds.create`, kept on uninstall. */
export function chartTemplateText(crd: CrdDefinition): string {
  const object = structuredClone(crd.object);
  object.metadata.annotations = { ...object.metadata.annotations, 'helm.sh/resource-policy': 'keep' };
  const body = toYaml(object, `${generatedNote}\n${commented(crd.comment)}`);
  if (body.includes('{{')) throw new CrdTemplateError(`${crd.file} contains "{{", which Helm would read as a template`);
  return ['{{- if .Values.crds.create }}', body.trimEnd(), '{{- end }}', ''].join('\n');
}

/** Every generated file, keyed by its path relative to the repository root. */
export function generatedCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const crd of customResourceDefinitions()) {
    files.set(`crds/${crd.file}`, crdFileText(crd));
    files.set(`${chartCrdDir}/${crd.file}`, chartTemplateText(crd));
  }
  return files;
}
