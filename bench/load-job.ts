// The parent's side of the forked load generator (load-generator.ts), shared by the benches that use it.
import type { ChildProcess } from 'node:child_process';
import type { LoadJob, LoadResult } from './load-generator.ts';

/** Sends one job to the forked load generator and answers its result; fails if the generator exits first. */
export function runJob(generator: ChildProcess, job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`the load generator exited with ${code}`));
    generator.once('exit', onExit);
    generator.once('message', (result) => {
      generator.off('exit', onExit);
      resolve(result as LoadResult);
    });
    generator.send(job);
  });
}
