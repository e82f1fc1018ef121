// A loopback HTTP endpoint through which the fault CLI (and anything else outside the agent's
// process) injects faults into a running node agent.
import { createServer, type Server } from 'node:http';
import type { NodeAgent } from './agent.ts';

/** One fault, as the CLI names it, and its parameters. */
export interface FaultRequest {
  action: 'power-off' | 'power-on' | 'freeze-pod' | 'thaw-pod' | 'kill-pod' | 'volume-read-only' | 'volume-writable' | 'corrupt-file';
  node?: string;
  mode?: 'freeze' | 'kill';
  namespace?: string;
  pod?: string;
  signal?: NodeJS.Signals;
  claim?: string;
  file?: string;
  offset?: number;
}

/** Applies one fault to the agent. */
export async function applyFault(agent: NodeAgent, f: FaultRequest): Promise<string> {
  const need = (value: string | undefined, what: string): string => {
    if (!value) throw new Error(`${f.action} needs ${what}`);
    return value;
  };
  switch (f.action) {
    case 'power-off':
      await agent.powerOff(need(f.node, 'a node'), f.mode ?? 'kill');
      return `powered off ${f.node} (${f.mode ?? 'kill'})`;
    case 'power-on':
      await agent.powerOn(need(f.node, 'a node'));
      return `powered on ${f.node}`;
    case 'freeze-pod':
      agent.freezePod(need(f.namespace, 'a namespace'), need(f.pod, 'a pod'));
      return `froze ${f.namespace}/${f.pod}`;
    case 'thaw-pod':
      agent.thawPod(need(f.namespace, 'a namespace'), need(f.pod, 'a pod'));
      return `thawed ${f.namespace}/${f.pod}`;
    case 'kill-pod':
      agent.killPod(need(f.namespace, 'a namespace'), need(f.pod, 'a pod'), f.signal ?? 'SIGKILL');
      return `sent ${f.signal ?? 'SIGKILL'} to ${f.namespace}/${f.pod}`;
    case 'volume-read-only':
    case 'volume-writable':
      await agent.setVolumeReadOnly(need(f.namespace, 'a namespace'), need(f.claim, 'a claim'), f.action === 'volume-read-only');
      return `made ${f.namespace}/${f.claim} ${f.action === 'volume-read-only' ? 'read-only' : 'writable'}`;
    case 'corrupt-file':
      await agent.corruptFile(need(f.namespace, 'a namespace'), need(f.claim, 'a claim'), need(f.file, 'a file'), f.offset ?? 0);
      return `corrupted ${f.file} in ${f.namespace}/${f.claim}`;
    default:
      throw new Error(`unknown fault ${String((f as { action: unknown }).action)}`);
  }
}

/** Serves POST /faults (a FaultRequest as JSON) on 127.0.0.1; resolves with the listening server. */
export async function startFaultServer(agent: NodeAgent, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: object): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/faults') return reply(404, { error: { code: 'not_found', message: 'POST /faults only' } });
      let fault: FaultRequest;
      try {
        fault = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FaultRequest;
      } catch {
        return reply(400, { error: { code: 'bad_json', message: 'the body is not JSON' } });
      }
      applyFault(agent, fault).then(
        (done) => reply(200, { done }),
        (err: unknown) => reply(422, { error: { code: 'fault_failed', message: err instanceof Error ? err.message : String(err) } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}` };
}
