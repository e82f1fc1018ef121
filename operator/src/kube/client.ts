// A small Kubernetes REST client: the few verbs the operator uses (list, get, create,
// replace, server-side apply), each counted by verb, resource and status code. Credentials
// come from client-node's KubeConfig, so in-cluster tokens and kubeconfig files both work.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** What a resource path is built from. */
export interface ResourceRef {
  /** `v1` for the core group, `group/version` otherwise. */
  apiVersion: string;
  /** Plural resource name: `statefulsets`. */
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** A failed API call; `status` is the HTTP code and `reason` the Status reason (Conflict, NotFound, ...). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number;
  readonly reason: string;
  readonly verb: string;
  readonly path: string;

  constructor(verb: string, path: string, status: number, reason: string, message: string, options?: ErrorOptions) {
    super(`${verb} ${path} failed with ${status} ${reason}: ${message}`, options);
    this.status = status;
    this.reason = reason;
    this.verb = verb;
    this.path = path;
  }
}

/** Called once per request with its outcome, for metrics. `code` is the HTTP status or "error". */
export type RequestObserver = (verb: string, resource: string, code: string) => void;

export interface KubeClientOptions {
  observe?: RequestObserver;
  /** Deadline of one request; a leader must notice a hung API server before its lease runs out. */
  timeoutMs?: number;
}

/** The path of a resource collection, object or subresource. */
export function resourcePath(ref: ResourceRef): string {
  const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : '';
  const sub = ref.name && ref.subresource ? `/${ref.subresource}` : '';
  return `${base}${ns}/${ref.resource}${name}${sub}`;
}

interface RawResponse {
  status: number;
  body: string;
}

/** Writes for objects the operator builds: anything with apiVersion, kind and metadata. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Kubernetes API client over node:http(s) with a keep-alive connection pool. */
export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly #server: URL;
  readonly #agent: http.Agent;
  readonly #observe: RequestObserver;
  readonly #timeoutMs: number;

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('The kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.#server = new URL(cluster.server);
    this.#agent = this.#server.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 32 }) : new http.Agent({ keepAlive: true, maxSockets: 32 });
    this.#observe = options.observe ?? (() => undefined);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Lists a collection (all namespaces when `ref.namespace` is unset). */
  async list<T>(ref: ResourceRef, query: Record<string, string> = {}): Promise<{ metadata: { resourceVersion: string }; items: T[] }> {
    return this.#json('list', 'GET', ref, query);
  }

  /** Reads one object; resolves to undefined when it does not exist. */
  async get<T>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.#json<T>('get', 'GET', ref);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Creates an object in the collection `ref` names. */
  async create<T>(ref: ResourceRef, body: KubeObject): Promise<T> {
    return this.#json('create', 'POST', { ...ref, name: undefined }, {}, body, 'application/json');
  }

  /** Replaces an object; its metadata.resourceVersion makes this a compare-and-swap. */
  async replace<T>(ref: ResourceRef, body: KubeObject): Promise<T> {
    return this.#json('update', 'PUT', ref, {}, body, 'application/json');
  }

  /** Server-side apply of `body` (which must hold every field this manager owns) under `fieldManager`. */
  async apply<T>(ref: ResourceRef, body: KubeObject, fieldManager: string): Promise<T> {
    return this.#json('apply', 'PATCH', ref, { fieldManager, force: 'true' }, body, 'application/apply-patch+yaml');
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  async #json<T>(verb: string, method: string, ref: ResourceRef, query: Record<string, string> = {}, body?: unknown, contentType?: string): Promise<T> {
    const path = resourcePath(ref);
    const search = new URLSearchParams(query).toString();
    let response: RawResponse;
    try {
      response = await this.#send(method, search ? `${path}?${search}` : path, body === undefined ? undefined : JSON.stringify(body), contentType);
    } catch (err) {
      this.#observe(verb, ref.resource, 'error');
      throw new KubeApiError(verb, path, 0, 'NetworkError', err instanceof Error ? err.message : String(err), { cause: err });
    }
    this.#observe(verb, ref.resource, String(response.status));
    if (response.status >= 200 && response.status < 300) return JSON.parse(response.body) as T;
    let reason = 'Unknown';
    let message = response.body.slice(0, 2000);
    try {
      const status = JSON.parse(response.body) as { reason?: string; message?: string };
      reason = status.reason ?? reason;
      message = status.message ?? message;
    } catch {
      // Not a Status object (a proxy's error page): the raw text is the message.
    }
    throw new KubeApiError(verb, path, response.status, reason, message);
  }

  async #send(method: string, path: string, body: string | undefined, contentType: string | undefined): Promise<RawResponse> {
    const options: https.RequestOptions = {
      method,
      protocol: this.#server.protocol,
      hostname: this.#server.hostname,
      port: this.#server.port,
      path: `${this.#server.pathname.replace(/\/$/, '')}${path}`,
      headers: { Accept: 'application/json', ...(contentType ? { 'Content-Type': contentType } : {}) },
      agent: this.#agent,
      timeout: this.#timeoutMs,
    };
    // Token files are re-read by client-node as they rotate, so apply credentials per request.
    await this.kubeConfig.applyToHTTPSOptions(options);
    const transport = this.#server.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
