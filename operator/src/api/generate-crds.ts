// Writes the CRDs defined in operator/src/api/v1alpha1.ts to crds/ and to the Helm chart
// (`make crds`). With `--check` it writes nothing and fails, naming the stale files, when
// what is committed differs from what the definition generates.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedCrdFiles } from './crd.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function committed(path: string): string | undefined {
  try {
    return readFileSync(join(root, path), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const check = process.argv.includes('--check');
const stale: string[] = [];
for (const [path, text] of generatedCrdFiles()) {
  if (committed(path) === text) continue;
  stale.push(path);
  if (!check) {
    writeFileSync(join(root, path), text);
    console.log(`Wrote ${path}`);
  }
}
if (check && stale.length > 0) {
  console.error(`These files differ from the CRDs that operator/src/api/v1alpha1.ts defines: ${stale.join(', ')}; run make crds`);
  process.exitCode = 1;
}
