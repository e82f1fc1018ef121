// A load generator that a benchmark forks into its own process, so that its CPU is counted
// apart from the server's and its event loop never delays the server's. It runs one job per
// message and answers with the counts, the latencies of the successful requests and its CPU.
//
//   closed loop: `concurrency` workers, each sends its next request when the last answered
//   open loop:   requests leave on a fixed schedule (`rate` per second) whatever the answers,
//                so a slow server cannot slow the load down (no coordinated omission), on at
//                most `connections` connections: a request due while all of them wait for
//                answers is not sent and is counted as `unsent`, so that the latency measured
//                is the server's, not a queue inside the generator
//
// Plain node:http with keep-alive agents; bodies are drained, not parsed. Not @meshwork/client:
// this is a measurement tool, and a typed client's JSON parsing, retries and stream adapters
// would add their own cost to the latencies and the load it is meant to report.
import { Agent, request } from 'node:http';

/** One run of load against one route, sent by the parent process. */
export interface LoadJob {
  mode: 'closed' | 'open';
  url: string;
  /** Requests are GETs of paths[i] with tokens[i], in turn. */
  paths: string[];
  tokens: string[];
  concurrency?: number;
  rate?: number;
  /** Open loop: connections (requests in flight) at most. */
  connections?: number;
  durationMs: number;
  /** Answers to requests scheduled before this are counted apart (the limiter's adaptation). */
  warmupMs?: number;
}

/** What a job measured (after its warm-up). */
export interface LoadResult {
  /** Requests sent in the measured window. */
  sent: number;
  /** Open loop: requests due in the measured window but not sent, every connection being busy. */
  unsent: number;
  ok: number;
  overloaded: number;
  rateLimited: number;
  otherStatus: number;
  errors: number;
  /** Latencies (ms) of the 200 answers, unsorted. */
  okLatenciesMs: number[];
  /** Length of the measured window (ms). */
  windowMs: number;
  /** CPU time the generator used during the whole job (ms). */
  cpuMs: number;
  /** Mean delay between a request's scheduled moment and its departure (open loop, ms). */
  meanSendDelayMs: number;
  maxInFlight: number;
  /** Reasons of a sample of the 503 answers (one in `refusalSampleEvery`). */
  sampledRefusalReasons: Record<string, number>;
  /** The concurrency limit named by the sampled `concurrency` refusals. */
  sampledLimits: number[];
}

// Reading every refusal's body would cost the generator more than the refusal costs the server.
const refusalSampleEvery = 25;

async function run(job: LoadJob): Promise<LoadResult> {
  const target = new URL(job.url);
  const connections = job.mode === 'closed' ? job.concurrency! : (job.connections ?? 512);
  const agent = new Agent({ keepAlive: true, maxSockets: connections, scheduling: 'lifo' });
  const headers = job.tokens.map((t) => ({ authorization: `Bearer ${t}` }));
  if (job.paths.length !== headers.length) throw new Error('a load job needs one path per token');
  const warmupMs = job.warmupMs ?? 0;
  const result: LoadResult = {
    sent: 0,
    unsent: 0,
    ok: 0,
    overloaded: 0,
    rateLimited: 0,
    otherStatus: 0,
    errors: 0,
    okLatenciesMs: [],
    windowMs: job.durationMs - warmupMs,
    cpuMs: 0,
    meanSendDelayMs: 0,
    maxInFlight: 0,
    sampledRefusalReasons: {},
    sampledLimits: [],
  };
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  let inFlight = 0;
  let next = 0;
  let sendDelayTotal = 0;

  /** Sends one request scheduled at `scheduled` and resolves when it was answered. */
  const fire = (scheduled: number): Promise<void> =>
    new Promise((resolve) => {
      const issued = performance.now();
      const counted = scheduled - start >= warmupMs;
      if (counted) result.sent++;
      inFlight++;
      if (inFlight > result.maxInFlight) result.maxInFlight = inFlight;
      const done = (): void => {
        inFlight--;
        resolve();
      };
      const turn = next++ % headers.length;
      const req = request({ host: target.hostname, port: target.port, path: job.paths[turn], agent, headers: headers[turn] }, (res) => {
        if (res.statusCode === 503 && counted && result.overloaded % refusalSampleEvery === 0) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const reason = /"reason":"(\w+)"/.exec(body)?.[1] ?? 'unknown';
            result.sampledRefusalReasons[reason] = (result.sampledRefusalReasons[reason] ?? 0) + 1;
            const limit = /\((\d+) requests in progress/.exec(body)?.[1];
            if (limit !== undefined) result.sampledLimits.push(Number(limit));
          });
        } else {
          res.resume();
        }
        res.on('end', () => {
          if (counted) {
            const status = res.statusCode ?? 0;
            if (status === 200) {
              result.ok++;
              result.okLatenciesMs.push(performance.now() - issued);
            } else if (status === 503) result.overloaded++;
            else if (status === 429) result.rateLimited++;
            else result.otherStatus++;
          }
          done();
        });
        res.on('error', () => {
          if (counted) result.errors++;
          done();
        });
      });
      req.on('error', () => {
        if (counted) result.errors++;
        done();
      });
      req.end();
    });

  if (job.mode === 'closed') {
    const worker = async (): Promise<void> => {
      while (performance.now() - start < job.durationMs) await fire(performance.now());
    };
    await Promise.all(Array.from({ length: job.concurrency! }, worker));
  } else {
    const rate = job.rate!;
    const pending = new Set<Promise<void>>();
    let scheduled = 0;
    let fired = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        const due = Math.min(Math.floor(((now - start) * rate) / 1000), Math.floor((job.durationMs * rate) / 1000));
        for (; scheduled < due; scheduled++) {
          const at = start + (scheduled * 1000) / rate;
          if (inFlight >= connections) {
            if (at - start >= warmupMs) result.unsent++;
            continue;
          }
          sendDelayTotal += now - at;
          fired++;
          const p = fire(at);
          pending.add(p);
          void p.then(() => pending.delete(p));
        }
        if (now - start >= job.durationMs) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 1);
    });
    await Promise.all(pending);
    result.meanSendDelayMs = fired === 0 ? 0 : sendDelayTotal / fired;
  }
  const cpu = process.cpuUsage(cpuBefore);
  result.cpuMs = (cpu.user + cpu.system) / 1000;
  agent.destroy();
  return result;
}

process.on('message', (job: LoadJob) => {
  void run(job).then((result) => process.send!(result));
});
