// The main entry point must run in a browser: nothing it reaches may import a `node:` module or
// a Node-only package; only the `./node` entry point may.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

/** Every module specifier a source file imports or re-exports. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(here, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
}

/** The files the entry point reaches through relative imports, itself included. */
function reachable(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const specifier of importsOf(file)) if (specifier.startsWith('./')) visit(specifier.slice(2));
  };
  visit(entry);
  return [...seen];
}

describe('entry points', () => {
  it('keeps the main entry point free of node: modules', () => {
    const files = reachable('index.ts');
    expect(files).toEqual(expect.arrayContaining(['index.ts', 'client.ts', 'errors.ts', 'retry.ts', 'paths.ts', 'blocks.ts', 'types.ts']));
    expect(files).not.toContain('node.ts');
    for (const file of files) {
      for (const specifier of importsOf(file))
        expect(specifier.startsWith('./') || specifier === '@meshwork/contract/errors', `${file} imports ${specifier}`).toBe(true);
    }
  });

  it("takes only the contract's error catalogue, which imports nothing (the contract's index brings zod, about 17 MB of a process's memory)", () => {
    const catalogue = readFileSync(join(here, '..', '..', 'contract', 'src', 'errors.ts'), 'utf8');
    expect([...catalogue.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1])).toEqual([]);
    const everyFile = ['index.ts', 'errors.ts', 'agent/engine.ts', 'cli/commands.ts', 'cli/exit-codes.ts'];
    for (const file of everyFile) expect(importsOf(file), file).not.toContain('@meshwork/contract');
  });

  it('puts the Node-only helpers behind ./node', () => {
    expect(importsOf('node.ts').filter((s) => s.startsWith('node:'))).toEqual(
      expect.arrayContaining(['node:fs', 'node:http', 'node:stream']),
    );
  });
});
