// A small Kubernetes REST client: the few verbs the operator uses (list, watch, get,
// create, replace, server-side apply, merge patch, delete), each counted by verb, resource
// and status code.
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import type { Credentials } from './credentials.ts';

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
export type RequestObserver = (verb: string, resource: string, code: string, seconds?: number) => void;

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

/** One event of a watch stream. */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Kubernetes API client over node:http(s) with a keep-alive connection pool. */
export class KubeClient {
  readonly credentials: Credentials;
  readonly #server: URL;
  readonly #agent: http.Agent;
  /** Watches hold their connection for minutes; they get their own pool so requests never queue behind them. */
  readonly #watchAgent: http.Agent;
  readonly #observe: RequestObserver;
  readonly #timeoutMs: number;

  constructor(credentials: Credentials, options: KubeClientOptions = {}) {
    this.credentials = credentials;
    this.#server = credentials.server;
    const tls = { ca: credentials.ca, cert: credentials.cert, key: credentials.key, rejectUnauthorized: !credentials.insecureSkipTlsVerify };
    const https_ = this.#server.protocol === 'https:';
    this.#agent = https_ ? new https.Agent({ keepAlive: true, maxSockets: 32, ...tls }) : new http.Agent({ keepAlive: true, maxSockets: 32 });
    this.#watchAgent = https_ ? new https.Agent({ keepAlive: false, ...tls }) : new http.Agent({ keepAlive: false });
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

  /** Applies a JSON merge patch (RFC 7386) to an object. */
  async mergePatch<T>(ref: ResourceRef, patch: unknown): Promise<T> {
    return this.#json('patch', 'PATCH', ref, {}, patch, 'application/merge-patch+json');
  }

  /**
   * Deletes an object; resolves to false when it was already gone. `uid` makes the delete
   * conditional on the object still being that one (not a successor with the same name);
   * `gracePeriodSeconds: 0` removes a pod at once, without waiting for its kubelet.
   */
  async delete(ref: ResourceRef, options: { gracePeriodSeconds?: number; uid?: string } = {}): Promise<boolean> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(options.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: options.gracePeriodSeconds } : {}),
      ...(options.uid ? { preconditions: { uid: options.uid } } : {}),
    };
    try {
      await this.#json('delete', 'DELETE', ref, {}, body, 'application/json');
      return true;
    } catch (err) {
      // 409 with a uid precondition: the object is already a successor, so the one meant is gone.
      if (err instanceof KubeApiError && (err.status === 404 || (err.status === 409 && options.uid))) return false;
      throw err;
    }
  }

  /**
   * Watches a collection from `resourceVersion`, calling `onEvent` per event, until the
   * server ends the watch (resolves), the connection fails or `signal` aborts (rejects).
   */
  async watch<T>(ref: ResourceRef, query: Record<string, string>, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const path = resourcePath({ ...ref, name: undefined });
    const search = new URLSearchParams({ ...query, watch: 'true' }).toString();
    // The server ends the watch after timeoutSeconds; silence well past that means a dead connection.
    const idleMs = (Number(query.timeoutSeconds ?? 300) + 60) * 1000;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.#transport().request(this.#requestOptions('GET', `${path}?${search}`, undefined, this.#watchAgent, idleMs), resolve);
      req.on('timeout', () => req.destroy(new Error(`watch ${path} was silent for ${idleMs} ms`)));
      req.on('error', reject);
      signal.addEventListener('abort', () => req.destroy(new Error('watch stopped')), { once: true });
      req.end();
    }).catch((err: unknown) => {
      this.#observe('watch', ref.resource, 'error');
      throw new KubeApiError('watch', path, 0, 'NetworkError', err instanceof Error ? err.message : String(err), { cause: err });
    });
    this.#observe('watch', ref.resource, String(res.statusCode ?? 0));
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let status: { reason?: string; message?: string } = {};
      try {
        status = JSON.parse(text) as typeof status;
      } catch {
        // Not a Status object; the raw text is the message.
      }
      throw new KubeApiError('watch', path, res.statusCode ?? 0, status.reason ?? 'Unknown', status.message ?? text.slice(0, 2000));
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    // A handler's own error ends the watch and reaches the caller as it was thrown.
    let handlerError: Error | undefined;
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const event = JSON.parse(line) as WatchEvent<T>;
        try {
          onEvent(event);
        } catch (err) {
          handlerError = err instanceof Error ? err : new Error(String(err));
          res.destroy();
          break;
        }
      }
    } catch (err) {
      throw new KubeApiError('watch', path, 0, 'NetworkError', err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (handlerError !== undefined) throw handlerError;
    if (!res.complete) throw new KubeApiError('watch', path, 0, 'NetworkError', 'the watch connection closed before the server ended it');
  }

  /** Closes pooled connections. */
  close(): void {
    this.#agent.destroy();
    this.#watchAgent.destroy();
  }

  #transport(): typeof https | typeof http {
    return this.#server.protocol === 'https:' ? https : http;
  }

  #requestOptions(method: string, path: string, contentType: string | undefined, agent: http.Agent, timeoutMs: number): https.RequestOptions {
    const token = this.credentials.token?.();
    return {
      method,
      protocol: this.#server.protocol,
      hostname: this.#server.hostname.replace(/^\[|\]$/g, ''),
      port: this.#server.port,
      path: `${this.#server.pathname.replace(/\/$/, '')}${path}`,
      headers: {
        Accept: 'application/json',
        'User-Agent': 'meshwork-operator',
        ...(contentType ? { 'Content-Type': contentType } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      agent,
      timeout: timeoutMs,
    };
  }

  async #json<T>(verb: string, method: string, ref: ResourceRef, query: Record<string, string> = {}, body?: unknown, contentType?: string): Promise<T> {
    const path = resourcePath(ref);
    const search = new URLSearchParams(query).toString();
    let response: RawResponse;
    const started = performance.now();
    try {
      response = await this.#send(method, search ? `${path}?${search}` : path, body === undefined ? undefined : JSON.stringify(body), contentType);
    } catch (err) {
      this.#observe(verb, ref.resource, 'error', (performance.now() - started) / 1000);
      throw new KubeApiError(verb, path, 0, 'NetworkError', err instanceof Error ? err.message : String(err), { cause: err });
    }
    this.#observe(verb, ref.resource, String(response.status), (performance.now() - started) / 1000);
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
    const options = this.#requestOptions(method, path, contentType, this.#agent, this.#timeoutMs);
    // Node sends a DELETE's body neither chunked nor with a length unless told: the server
    // would ignore it and read it as the start of the next request on the connection.
    if (body !== undefined) options.headers = { ...options.headers, 'Content-Length': Buffer.byteLength(body) };
    return new Promise((resolve, reject) => {
      const req = this.#transport().request(options, (res) => {
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
