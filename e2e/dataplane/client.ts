// A small client of the v1 API for tests and benchmarks: what a device agent does, minus the
// file system. Block hashing and upload follow the protocol: ask which blocks are missing,
// upload only those, then commit the block list with a precondition.
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';

/** A response with its status, headers and parsed JSON body (undefined when not JSON). */
export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  raw: Buffer;
}

/** A block reference as the API takes it. */
export interface BlockRef {
  sha256: string;
  size: number;
}

/** The sha256 of a buffer, hex. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A v1 API client bound to a base URL and a bearer token. */
export class MeshClient {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly agent: Agent;

  constructor(baseUrl: string, token?: string, agent?: Agent) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.agent = agent ?? new Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** The same server with another token (sharing the connection pool). */
  as(token: string): MeshClient {
    return new MeshClient(this.baseUrl, token, this.agent);
  }

  /** Sends a request; `body` is JSON unless it is a Buffer. The raw path is sent as given. */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const url = new URL(this.baseUrl);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent: this.agent,
          headers: {
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(payload && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}),
            ...(payload ? { 'content-length': String(payload.length) } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            let parsed: unknown;
            if (String(res.headers['content-type'] ?? '').includes('json') && raw.length > 0) parsed = JSON.parse(raw.toString('utf8'));
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as T, raw });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Creates a user (administrator token) and returns its id and account token. */
  async createUser(name: string): Promise<{ id: string; token: string }> {
    const res = await this.request<{ id: string; token: string }>('POST', '/v1/users', { name });
    if (res.status !== 201) throw new Error(`creating user ${name} answered ${res.status}: ${res.raw.toString()}`);
    return res.body;
  }

  /** Registers a device (account token) and returns a client that uses its token. */
  async registerDevice(name: string): Promise<MeshClient & { deviceId: string }> {
    const res = await this.request<{ id: string; token: string }>('POST', '/v1/devices', { name });
    if (res.status !== 201) throw new Error(`registering device ${name} answered ${res.status}: ${res.raw.toString()}`);
    return Object.assign(this.as(res.body.token), { deviceId: res.body.id });
  }

  /** Creates a mesh object and returns its id. */
  async createObject(name: string): Promise<string> {
    const res = await this.request<{ id: string }>('POST', '/v1/objects', { name });
    if (res.status !== 201) throw new Error(`creating object ${name} answered ${res.status}: ${res.raw.toString()}`);
    return res.body.id;
  }

  /** Uploads one block. */
  async putBlock(data: Buffer, sha256 = sha256Hex(data)): Promise<ApiResponse> {
    return this.request('PUT', `/v1/blocks/${sha256}`, data, { 'content-type': 'application/octet-stream' });
  }

  /** Commits a file entry; `precondition` is an If-Match version or "create". */
  async commit(objectId: string, path: string, blocks: BlockRef[], precondition: string): Promise<ApiResponse> {
    const headers: Record<string, string> = precondition === 'create' ? { 'if-none-match': '*' } : { 'if-match': `"${precondition}"` };
    return this.request('PUT', `/v1/objects/${objectId}/entries/${encodePath(path)}`, { kind: 'file', blocks }, headers);
  }

  /** Uploads `data` as a file in blocks of `blockSize`: missing blocks first, then the commit. */
  async uploadFile(objectId: string, path: string, data: Buffer, precondition: string, blockSize = 4 * 1024 * 1024): Promise<ApiResponse> {
    const blocks: (BlockRef & { data: Buffer })[] = [];
    for (let offset = 0; offset < data.length; offset += blockSize) {
      const part = data.subarray(offset, offset + blockSize);
      blocks.push({ sha256: sha256Hex(part), size: part.length, data: part });
    }
    const missing = await this.request<{ missing: string[] }>('POST', '/v1/blocks/missing', { blocks: blocks.map((b) => b.sha256) });
    if (missing.status !== 200) throw new Error(`missing answered ${missing.status}`);
    for (const sha of missing.body.missing) {
      const block = blocks.find((b) => b.sha256 === sha)!;
      const put = await this.putBlock(block.data, sha);
      if (put.status !== 201) throw new Error(`block upload answered ${put.status}: ${put.raw.toString()}`);
    }
    return this.commit(objectId, path, blocks.map(({ sha256, size }) => ({ sha256, size })), precondition);
  }
}

/** Percent-encodes each segment of a path for a URL. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
