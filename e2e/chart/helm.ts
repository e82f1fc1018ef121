// Running helm and kubectl from tests, against the chart in charts/meshwork.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, requireBinary } from '../harness/binaries.ts';

export const chartDir = join(repoRoot, 'charts', 'meshwork');

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a pinned binary (helm, kubectl) with `args`; never throws on a non-zero exit. */
export function runTool(binary: 'helm' | 'kubectl', args: string[], options: { input?: string; kubeconfig?: string; timeoutMs?: number } = {}): CommandResult {
  const kube = options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : [];
  const result = spawnSync(requireBinary(binary), [...kube, ...args], {
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    env: { ...process.env, HELM_CACHE_HOME: join(repoRoot, '.cache', 'helm'), HELM_CONFIG_HOME: join(repoRoot, '.cache', 'helm'), HELM_DATA_HOME: join(repoRoot, '.cache', 'helm') },
  });
  return { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? String(result.error ?? '') };
}

/** Like runTool, but fails with the command's output when it exits non-zero. */
export function mustRun(binary: 'helm' | 'kubectl', args: string[], options: Parameters<typeof runTool>[2] = {}): string {
  const result = runTool(binary, args, options);
  if (result.status !== 0) throw new Error(`${binary} ${args.join(' ')} exited with ${result.status}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}
