// The `meshwork` command bound to the process (signals, stdout, tracing, the exit code);
// meshwork.ts loads it. Everything else is in main.ts.
import { homedir } from 'node:os';
import { startClientTracing } from '../tracing.ts';
import { main } from './main.ts';

const signalHandlers = new Set<(signal: string) => void>();
let signalsSeen = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signalsSeen++;
    // A second Ctrl-C ends at once, whatever is still being cleaned up.
    if (signalsSeen > 1 || signalHandlers.size === 0) process.exit(130);
    for (const handler of signalHandlers) handler(signal);
  });
}

// A reader that stops early (`meshwork get ID:PATH - | head`) closes the pipe: end quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// Tracing only with an OTLP endpoint; OpenTelemetry is not even loaded otherwise.
const tracing = await startClientTracing({
  serviceName: 'meshwork-cli',
  endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
  warn: (message) => process.stderr.write(`meshwork: warning: tracing: ${message}\n`),
});
const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  home: homedir(),
  onSignal(handler) {
    signalHandlers.add(handler);
    return () => void signalHandlers.delete(handler);
  },
  ...(tracing ? { tracing } : {}),
});
await tracing?.shutdown(5000);
process.exitCode = code;
