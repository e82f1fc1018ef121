// The import boundaries the build enforces (docs/architecture.md draws them): which part of the
// project may import which. Product code never imports test code, roles never import each
// other, a store never imports the HTTP layer, and product code imports only packages that are
// production dependencies, except for `import type` of a development dependency: it is erased
// before the code runs (verbatimModuleSyntax keeps every other import), so the operator can use
// client-node's model types without the image installing client-node. Plain JavaScript so that
// ESLint loads it on any Node.
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Product areas, most specific first. `may` lists the areas a file of this area may import
 * (besides its own); `mustNot` names areas it must never reach even where a broader area allows it.
 */
export const areas = [
  { name: 'contract', dir: 'contract/src', may: [] },
  { name: 'client', dir: 'client/src', may: ['contract'] },
  { name: 'dataplane/stores', dir: 'dataplane/src/stores', may: ['contract', 'dataplane/shared', 'dataplane/telemetry'] },
  {
    name: 'dataplane/partition',
    dir: 'dataplane/src/partition',
    may: ['contract', 'client', 'dataplane/shared', 'dataplane/stores', 'dataplane/telemetry', 'dataplane/health', 'dataplane/http'],
  },
  {
    name: 'dataplane/gateway',
    dir: 'dataplane/src/gateway',
    may: ['contract', 'client', 'dataplane/shared', 'dataplane/telemetry', 'dataplane/health', 'dataplane/http'],
  },
  {
    name: 'dataplane/prober',
    dir: 'dataplane/src/prober',
    may: ['contract', 'client', 'dataplane/shared', 'dataplane/telemetry', 'dataplane/health', 'dataplane/http'],
  },
  { name: 'dataplane/telemetry', dir: 'dataplane/src/telemetry', may: ['contract', 'dataplane/shared'] },
  { name: 'dataplane/health', dir: 'dataplane/src/health', may: ['contract', 'dataplane/shared', 'dataplane/telemetry'] },
  { name: 'dataplane/http', dir: 'dataplane/src/http', may: ['contract', 'dataplane/shared'] },
  // main.ts starts whichever role the command names: the one file that sees every role.
  { name: 'dataplane/main', dir: 'dataplane/src/main.ts', may: ['contract', 'client', 'dataplane/*'] },
  { name: 'dataplane/shared', dir: 'dataplane/src', may: ['contract'] },
  { name: 'operator', dir: 'operator/src', may: ['contract'] },
  { name: 'entry', dir: 'meshwork.ts', may: ['contract', 'operator', 'dataplane/main'] },
];

const packageAreas = { '@meshwork/contract': 'contract', '@meshwork/client': 'client' };

/** Whether a repository-relative path is test code: tests, test helpers, benchmarks, the harness. */
export function isTestCode(path) {
  return /\.test\.ts$/.test(path) || /(^|\/)testing\//.test(path) || /^(e2e|bench|lint)\//.test(path) || /^charts\/.*\.ts$/.test(path);
}

/** The product area of a repository-relative path, or undefined for test code and other files. */
export function areaOf(path) {
  if (isTestCode(path)) return undefined;
  return areas.find((a) => path === a.dir || path.startsWith(`${a.dir}/`));
}

function allowed(from, toName) {
  if (from.name === toName) return true;
  return from.may.some((m) => m === toName || (m.endsWith('/*') && toName.startsWith(m.slice(0, -1))));
}

const manifests = new Map();
function manifestOf(dir) {
  if (!manifests.has(dir)) {
    const path = resolve(repoRoot, dir, 'package.json');
    manifests.set(dir, existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {});
  }
  return manifests.get(dir);
}

/** Whether the root manifest, or the manifest of the workspace `file` is in (client/, contract/), declares `name` in `field`. */
function declaredIn(field, name, file) {
  const workspace = file.split('/')[0];
  return [manifestOf('.'), manifestOf(workspace)].some((m) => Object.hasOwn(m[field] ?? {}, name));
}

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * The verdict on one import of `file` (repository-relative): undefined when allowed, else why not.
 * `typeOnly` is true for `import type` and `export type ... from`, which never load the module.
 */
export function checkImport(file, specifier, { typeOnly = false } = {}) {
  const from = areaOf(file);
  if (from === undefined) return undefined;
  if (specifier.startsWith('.')) {
    const target = relative(repoRoot, resolve(repoRoot, dirname(file), specifier))
      .split(sep)
      .join('/');
    if (isTestCode(target)) return `product code (${from.name}) must not import test code (${target})`;
    const to = areaOf(target);
    if (to === undefined) return `${from.name} must not import ${target}, which is outside the product areas`;
    if (!allowed(from, to.name)) return `${from.name} must not import ${to.name} (${target}); see docs/architecture.md`;
    return undefined;
  }
  if (specifier.startsWith('node:') || builtinModules.includes(specifier)) return undefined;
  const name = packageName(specifier);
  const area = packageAreas[name];
  if (area !== undefined) return allowed(from, area) ? undefined : `${from.name} must not import ${name}; see docs/architecture.md`;
  if (declaredIn('dependencies', name, file)) return undefined;
  if (typeOnly && declaredIn('devDependencies', name, file)) return undefined;
  if (typeOnly) return `product code (${from.name}) must not import types from ${name}: it is not a dependency of the project`;
  return `product code (${from.name}) must not import ${name}: it is not a production dependency (only \`import type\` of a development dependency is allowed)`;
}

/** The ESLint rule: every import, export-from and dynamic import of a literal is checked; declarations that are wholly `type` are type-only. */
const rule = {
  meta: { type: 'problem', docs: { description: 'Enforces the import boundaries between Meshwork’s parts' }, schema: [] },
  create(context) {
    const file = relative(repoRoot, context.filename).split(sep).join('/');
    if (areaOf(file) === undefined) return {};
    const check = (node) => {
      if (node.source?.type !== 'Literal' || typeof node.source.value !== 'string') return;
      const typeOnly = node.importKind === 'type' || node.exportKind === 'type';
      const problem = checkImport(file, node.source.value, { typeOnly });
      if (problem !== undefined) context.report({ node: node.source, message: problem });
    };
    return { ImportDeclaration: check, ExportAllDeclaration: check, ExportNamedDeclaration: check, ImportExpression: check };
  },
};

/** The plugin that carries the rule, as `meshwork/boundaries`. */
export const boundariesPlugin = { rules: { boundaries: rule } };
