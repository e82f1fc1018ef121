// Runs one benchmark by name: `npm run bench -- <name>` runs bench/<name>.bench.ts.
// Each benchmark prints a table, compares against a baseline measured in the same run,
// and ends with one JSON line of its figures.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length));
const [name, ...args] = process.argv.slice(2);
if (!name || !existsSync(join(here, `${name}.bench.ts`))) {
  console.error(`usage: npm run bench -- <name> [args]\nbenchmarks: ${available.join(', ') || '(none yet)'}`);
  process.exit(2);
}
const result = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.bench.ts`), ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
