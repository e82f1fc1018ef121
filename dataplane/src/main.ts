// Entry point of the data-plane image: `node dataplane/src/main.ts <role>`.
import { ExitCode } from '@meshwork/contract';
import { terminate } from './termination.ts';

const roles = ['partition', 'gateway', 'prober'] as const;
const role = process.argv[2];

switch (role) {
  case 'partition': {
    const { runPartition } = await import('./partition/server.ts');
    await runPartition();
    break;
  }
  case 'gateway': {
    const { runGateway } = await import('./gateway/server.ts');
    await runGateway();
    break;
  }
  case 'prober': {
    const { runProber } = await import('./prober/server.ts');
    await runProber();
    break;
  }
  default:
    terminate(
      ExitCode.usage,
      `usage: main.ts <role>; role must be one of ${roles.join(', ')}${role === undefined ? '' : `, not "${role}"`}`,
    );
}
