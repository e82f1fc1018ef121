// A client process for tracing tests: it starts tracing as a data-plane process does (service
// "meshwork-test-client"), creates an object and uploads a file to a partition inside one
// trace (a root span, and a client span per request whose context goes out as `traceparent`),
// flushes its spans and prints {"traceId", "statuses"} as one JSON line.
//
// Environment: OTEL_EXPORTER_OTLP_ENDPOINT, MESHWORK_URL (the partition), MESHWORK_TOKEN (a
// device token).
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { MeshworkClient, type RawResponse } from '@meshwork/client';
import { startTracing } from '../../dataplane/src/telemetry/tracing.ts';

const url = process.env.MESHWORK_URL;
const token = process.env.MESHWORK_TOKEN;
if (!url || !token) throw new Error('MESHWORK_URL and MESHWORK_TOKEN are required');
const tracing = await startTracing({ serviceName: 'meshwork-test-client', endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
const client = new MeshworkClient({ baseUrl: url, token });
const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** One API call in a client span of its own, carrying the trace context; raw, so that its status is reported as sent. */
async function traced(
  method: string,
  route: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return tracing.inSpan(`${method} ${route}`, { 'http.request.method': method }, async () => {
    const outgoing = { ...headers };
    tracing.inject(outgoing);
    return client.raw(method, path, { body, headers: outgoing });
  });
}

/** POSTs a JSON body in two parts a moment apart, as a slow client would; resolves with the status. */
async function postSlowly(path: string, body: Buffer, headers: Record<string, string>): Promise<number> {
  // Raw node:http: the body is sent in two parts a moment apart, which no client call does.
  const target = new URL(client.baseUrl);
  const req = request({
    host: target.hostname,
    port: target.port,
    method: 'POST',
    path,
    headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(body.length) },
  });
  const answered = new Promise<number>((resolve, reject) => {
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
  });
  req.write(body.subarray(0, body.length / 2));
  await delay(200);
  req.end(body.subarray(body.length / 2));
  return answered;
}

const content = Buffer.from('content uploaded inside one trace\n');
const sha = sha256Hex(content);
const result = await tracing.startTrace('upload a file', {}, async () => {
  const created = await traced('POST', '/v1/objects', '/v1/objects', { name: 'Traced' });
  const objectId = (created.body as { id: string }).id;
  const block = await traced('PUT', '/v1/blocks/:sha256', `/v1/blocks/${sha}`, content, { 'content-type': 'application/octet-stream' });
  const commit = await traced(
    'PUT',
    '/v1/objects/:id/entries/*path',
    `/v1/objects/${objectId}/entries/traced.txt`,
    { kind: 'file', blocks: [{ sha256: sha, size: content.length }] },
    { 'if-none-match': '*' },
  );
  // A body that arrives in two parts: the route's S3 calls run after the body parser's last
  // event, which the socket emits outside the request's context.
  const query = Buffer.from(JSON.stringify({ blocks: [sha256Hex(Buffer.from('never uploaded'))] }));
  const missing = await tracing.inSpan('POST /v1/blocks/missing', { 'http.request.method': 'POST' }, async () => {
    const headers: Record<string, string> = {};
    tracing.inject(headers);
    return postSlowly('/v1/blocks/missing', query, headers);
  });
  return { traceId: tracing.activeIds()?.trace_id, statuses: [created.status, block.status, commit.status, missing] };
});
await tracing.shutdown(10_000);
process.stdout.write(`${JSON.stringify(result)}\n`);
