// Running helm and kubectl from tests, against the chart in charts/meshwork. The commands
// run asynchronously: a test may host the node agent in its own event loop, which must keep
// its nodes' heartbeats and pod watches going while helm waits.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, requireBinary } from './binaries.ts';

export const chartDir = join(repoRoot, 'charts', 'meshwork');

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a pinned binary (helm, kubectl) with `args`; resolves with its output whatever its exit code. */
export function runTool(
  binary: 'helm' | 'kubectl',
  args: string[],
  options: { input?: string; kubeconfig?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const kube = options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : [];
  const helmHome = join(repoRoot, '.cache', 'helm');
  const child = spawn(requireBinary(binary), [...kube, ...args], {
    env: { ...process.env, HELM_CACHE_HOME: helmHome, HELM_CONFIG_HOME: helmHome, HELM_DATA_HOME: helmHome },
    timeout: options.timeoutMs ?? 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => {
    child.on('error', (err) => resolve({ status: -1, stdout, stderr: stderr + String(err) }));
    child.on('close', (code, signal) =>
      resolve({ status: code ?? -1, stdout, stderr: signal ? `${stderr}\n(killed by ${signal})` : stderr }),
    );
  });
}

/** Like runTool, but fails with the command's output when it exits non-zero. */
export async function mustRun(binary: 'helm' | 'kubectl', args: string[], options: Parameters<typeof runTool>[2] = {}): Promise<string> {
  const result = await runTool(binary, args, options);
  if (result.status !== 0) throw new Error(`${binary} ${args.join(' ')} exited with ${result.status}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}
