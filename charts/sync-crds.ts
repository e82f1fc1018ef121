// Writes the chart's CRD templates from crds/*.yaml (`make chart-crds`): the same documents,
// behind `crds.create`, with helm.sh/resource-policy: keep so uninstalling keeps the CRDs
// and the custom resources. `--check` fails instead of writing when a template is stale.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'crds');
const target = join(root, 'charts', 'meshwork', 'templates', 'crds');

/** The chart template for one CRD file. */
export function chartTemplate(file: string, text: string): string {
  if (text.includes('{{')) throw new Error(`crds/${file} contains "{{", which Helm would read as a template`);
  const doc = parseDocument(text);
  doc.setIn(['metadata', 'annotations', 'helm.sh/resource-policy'], 'keep');
  return [
    '{{- if .Values.crds.create }}',
    `# Generated from crds/${file} by \`make chart-crds\`: edit that file, not this one.`,
    doc.toString({ lineWidth: 0 }).trimEnd(),
    '{{- end }}',
    '',
  ].join('\n');
}

const check = process.argv.includes('--check');
const stale: string[] = [];
for (const file of readdirSync(source).filter((f) => f.endsWith('.yaml'))) {
  const wanted = chartTemplate(file, readFileSync(join(source, file), 'utf8'));
  const path = join(target, file);
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // Not generated yet.
  }
  if (current === wanted) continue;
  if (check) stale.push(file);
  else writeFileSync(path, wanted);
}
if (stale.length > 0) {
  console.error(`The chart's CRDs differ from crds/ (${stale.join(', ')}): run make chart-crds`);
  process.exit(1);
}
