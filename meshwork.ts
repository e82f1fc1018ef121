// The one entry point of the Meshwork image: `node meshwork.ts <role> [args]`. Roles share
// the image and are chosen by command; each loads only its own code.
import { ExitCode } from '@meshwork/contract';

const roles: Record<string, string> = {
  operator: './operator/src/main.ts',
  partition: './dataplane/src/main.ts',
  gateway: './dataplane/src/main.ts',
  prober: './dataplane/src/main.ts',
};

const role = process.argv[2];
const entry = role === undefined ? undefined : roles[role];
if (entry === undefined) {
  process.stderr.write(`usage: meshwork <role> (roles: ${Object.keys(roles).join(', ')}); got ${role ?? 'nothing'}\n`);
  process.exit(ExitCode.usage);
}
await import(entry);
