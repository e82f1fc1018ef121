// The boundary rule itself: deliberate violations fail lint, allowed imports pass.
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { boundariesPlugin, checkImport } from './boundaries.js';

describe('checkImport', () => {
  it.each([
    ['dataplane/src/partition/app.ts', '../../../e2e/harness/wait.ts', /must not import test code/],
    ['dataplane/src/partition/app.ts', './routes/entries.test.ts', /must not import test code/],
    ['operator/src/main.ts', '../../dataplane/src/config.ts', /operator must not import dataplane/],
    ['dataplane/src/config.ts', '../../operator/src/config.ts', /must not import operator/],
    ['dataplane/src/stores/metadata-store.ts', '../partition/schemas.ts', /stores must not import dataplane\/partition/],
    ['dataplane/src/stores/block-store.ts', '../http/range.ts', /stores must not import dataplane\/http/],
    ['dataplane/src/partition/app.ts', '../gateway/router.ts', /partition must not import dataplane\/gateway/],
    ['dataplane/src/gateway/router.ts', '../partition/app.ts', /gateway must not import dataplane\/partition/],
    ['contract/src/errors.ts', '@meshwork/client', /contract must not import @meshwork\/client/],
    ['contract/src/errors.ts', '../../dataplane/src/config.ts', /contract must not import dataplane/],
    ['client/src/index.ts', '../../dataplane/src/paths.ts', /client must not import dataplane/],
    ['operator/src/main.ts', 'vitest', /not a production dependency/],
    ['operator/src/specs/statefulset.ts', '@kubernetes/client-node', /not a production dependency/],
    ['dataplane/src/stores/block-store.ts', 'minio', /not a production dependency/],
    // A workspace's own dependency is its own: the client's `ignore` is not the operator's.
    ['operator/src/main.ts', 'ignore', /not a production dependency/],
  ])('%s importing %s is refused', (file, specifier, why) => {
    expect(checkImport(file, specifier)).toMatch(why);
  });

  it.each([
    // Erased before the code runs, so the image needs no client-node.
    ['operator/src/specs/statefulset.ts', '@kubernetes/client-node', undefined],
    // A type-only import still needs the package to be declared, or type checking breaks.
    ['operator/src/main.ts', 'left-pad', /not a dependency of the project/],
    // Boundaries between areas hold for types too.
    ['operator/src/main.ts', '../../dataplane/src/config.ts', /operator must not import dataplane/],
    ['dataplane/src/partition/app.ts', '../../../e2e/harness/wait.ts', /must not import test code/],
  ])('%s importing only types from %s: %s', (file, specifier, verdict) => {
    if (verdict === undefined) expect(checkImport(file, specifier, { typeOnly: true })).toBeUndefined();
    else expect(checkImport(file, specifier, { typeOnly: true })).toMatch(verdict);
  });

  it.each([
    ['dataplane/src/partition/app.ts', '../stores/metadata-store.ts'],
    ['dataplane/src/partition/app.ts', '@meshwork/contract'],
    ['dataplane/src/prober/prober.ts', '@meshwork/client'],
    ['operator/src/main.ts', '@meshwork/contract'],
    ['operator/src/main.ts', 'node:http'],
    ['dataplane/src/main.ts', './partition/server.ts'],
    ['e2e/harness/wait.ts', '../../dataplane/src/partition/app.ts'],
    ['dataplane/src/partition/app.test.ts', '../../../e2e/harness/wait.ts'],
    // Declared in client/package.json, the workspace's own manifest.
    ['client/src/agent/scan.ts', 'ignore'],
  ])('%s importing %s is allowed', (file, specifier) => {
    expect(checkImport(file, specifier)).toBeUndefined();
  });
});

describe('the lint rule', () => {
  const eslint = new ESLint({
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { meshwork: boundariesPlugin },
        rules: { 'meshwork/boundaries': 'error' },
      },
    ],
  });

  it('fails a product file that imports the test harness', async () => {
    const [result] = await eslint.lintText("import { waitFor } from '../../../e2e/harness/wait.ts';\nexport const x = waitFor;\n", {
      filePath: 'dataplane/src/partition/violation.ts',
    });
    expect(result?.errorCount).toBe(1);
    expect(result?.messages[0]?.ruleId).toBe('meshwork/boundaries');
  });

  it('checks re-exports and dynamic imports too', async () => {
    const [result] = await eslint.lintText(
      "export * from '../../dataplane/src/config.ts';\nawait import('../../dataplane/src/paths.ts');\n",
      {
        filePath: 'operator/src/violation.ts',
      },
    );
    expect(result?.errorCount).toBe(2);
  });

  it('allows `import type` of a development dependency but not a value import or `import { type X }`, which stays at run time', async () => {
    const [result] = await eslint.lintText(
      [
        "import type { V1Pod } from '@kubernetes/client-node';",
        "export type { V1Node } from '@kubernetes/client-node';",
        "import { type V1Service } from '@kubernetes/client-node';",
        "import { KubeConfig } from '@kubernetes/client-node';",
        'export const k = KubeConfig;',
        'export type P = V1Pod | V1Service;',
        '',
      ].join('\n'),
      { filePath: 'operator/src/specs/violation.ts' },
    );
    expect(result?.messages.map((m) => m.line)).toEqual([3, 4]);
  });

  it('passes a clean file', async () => {
    const [result] = await eslint.lintText("import { ApiError } from '@meshwork/contract';\nexport const e = ApiError;\n", {
      filePath: 'dataplane/src/partition/clean.ts',
    });
    expect(result?.errorCount).toBe(0);
  });
});
