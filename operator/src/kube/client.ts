// A small Kubernetes REST client: the few verbs the operator uses (list, watch, get,
// create, replace, server-side apply, merge patch, delete), each counted by verb, resource
// and status code (every attempt counts, so throttling shows in the metrics). ADR 10 says why
// it is not client-node. What it does besides sending requests:
// - `429 Too Many Requests` (API Priority and Fairness, a max-in-flight limit) is retried for
//   every verb, since the server did not process the request; `503` is retried for the
//   idempotent ones (get, list, replace, apply, merge patch, delete), never for create. It waits
//   for `Retry-After` (capped at `retry.maxDelayMs`, 10 s by default) plus up to a quarter of it
//   again as jitter, or without the header a capped exponential backoff with full jitter, for at
//   most `retry.attempts` attempts (4).
// - Lists are read in pages (`limit`, 500 by default, then `continue`), all from the same
//   snapshot; when the snapshot expires before the last page (410 on a `continue` token, after
//   etcd compaction), the list starts over, up to 3 times.
// What it does not do: it does not retry a request that got no answer (a network error or a
// timeout: a write may have been applied), nor a watch (the informer restarts watches with its
// own backoff; `KubeApiError.retryAfterSeconds` carries the server's hint); it does not follow
// redirects, speak protobuf or HTTP/2, or run kubeconfig `exec` and `auth-provider` plugins
// (credentials.ts refuses them); a list that keeps expiring fails with the 410.
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshworkError } from '@meshwork/contract';
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
export class KubeApiError extends MeshworkError {
  readonly status: number;
  readonly reason: string;
  readonly verb: string;
  readonly path: string;
  /** The answer's `Retry-After` in seconds, when it carried one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    verb: string,
    path: string,
    status: number,
    reason: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super('kube_api_failed', `${verb} ${path} failed with ${status} ${reason}: ${message}`, { cause: options?.cause });
    this.status = status;
    this.reason = reason;
    this.verb = verb;
    this.path = path;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** Called once per request with its outcome, for metrics. `code` is the HTTP status or "error". */
export type RequestObserver = (verb: string, resource: string, code: string, seconds?: number) => void;

/** How often a throttled request is tried and how long the waits in between may be. */
export interface KubeRetryPolicy {
  /** Attempts in all, the first included (default 4; 1 turns retries off). */
  attempts: number;
  /** The cap of the first wait without Retry-After (default 200 ms); it doubles per attempt. */
  baseDelayMs: number;
  /** No wait is longer than this, Retry-After included (default 10 s). */
  maxDelayMs: number;
}

/** The defaults: four attempts, waits of at most 10 s. */
export const defaultKubeRetryPolicy: KubeRetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 10_000 };

/** How a client counts its requests, how long one may take, and how it retries and pages. */
export interface KubeClientOptions {
  observe?: RequestObserver;
  /** Deadline of one request; a leader must notice a hung API server before its lease runs out. */
  timeoutMs?: number;
  /** Retries of throttled requests (429, and 503 for idempotent verbs). */
  retry?: Partial<KubeRetryPolicy>;
  /** Objects per page of a list (default 500, as client-go's pager). */
  listPageSize?: number;
}

// Verbs whose request may be sent twice with the same outcome; a create may not (409 the second time).
const idempotentVerbs: ReadonlySet<string> = new Set(['get', 'list', 'update', 'apply', 'patch', 'delete']);
// A list whose snapshot expired is started over this many times before its 410 is thrown.
const listRestarts = 3;

/**
 * The wait before the next attempt after attempt `attempt` (1-based) was throttled:
 * `Retry-After` (capped) plus jitter of up to a quarter of it, or a capped exponential backoff
 * with full jitter. `random` is a number in [0, 1).
 */
export function kubeRetryDelayMs(policy: KubeRetryPolicy, attempt: number, random: number, retryAfterSeconds: number | undefined): number {
  if (retryAfterSeconds !== undefined) {
    const base = Math.min(policy.maxDelayMs, retryAfterSeconds * 1000);
    return Math.min(policy.maxDelayMs, Math.round(base + random * Math.max(base / 4, 100)));
  }
  return Math.floor(random * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
}

/** Whether an answer is worth repeating: 429 for any verb, 503 for idempotent ones. */
export function isRetryableKubeAnswer(verb: string, status: number): boolean {
  return status === 429 || (status === 503 && idempotentVerbs.has(verb));
}

/** Seconds of a Retry-After header; an HTTP date or garbage counts as absent. */
export function parseRetryAfter(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim());
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
  retryAfter: string | undefined;
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
  readonly #retry: KubeRetryPolicy;
  readonly #listPageSize: number;

  constructor(credentials: Credentials, options: KubeClientOptions = {}) {
    this.credentials = credentials;
    this.#server = credentials.server;
    const tls = {
      ca: credentials.ca,
      cert: credentials.cert,
      key: credentials.key,
      rejectUnauthorized: !credentials.insecureSkipTlsVerify,
    };
    const https_ = this.#server.protocol === 'https:';
    this.#agent = https_
      ? new https.Agent({ keepAlive: true, maxSockets: 32, ...tls })
      : new http.Agent({ keepAlive: true, maxSockets: 32 });
    this.#watchAgent = https_ ? new https.Agent({ keepAlive: false, ...tls }) : new http.Agent({ keepAlive: false });
    this.#observe = options.observe ?? (() => undefined);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retry = { ...defaultKubeRetryPolicy, ...options.retry };
    this.#listPageSize = options.listPageSize ?? 500;
  }

  /**
   * Lists a collection (all namespaces when `ref.namespace` is unset), page by page, into one
   * result whose resourceVersion is that of the snapshot every page came from.
   */
  async list<T>(ref: ResourceRef, query: Record<string, string> = {}): Promise<{ metadata: { resourceVersion: string }; items: T[] }> {
    for (let restart = 0; ; restart++) {
      const items: T[] = [];
      let token: string | undefined;
      let resourceVersion = '';
      try {
        do {
          const pageQuery: Record<string, string> = { ...query, limit: String(this.#listPageSize), ...(token ? { continue: token } : {}) };
          const page = await this.#json<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>(
            'list',
            'GET',
            ref,
            pageQuery,
          );
          // Later pages carry the first page's snapshot; the first one's is the list's.
          if (token === undefined) resourceVersion = page.metadata?.resourceVersion ?? '';
          for (const item of page.items ?? []) items.push(item);
          token = page.metadata?.continue || undefined;
        } while (token !== undefined);
        return { metadata: { resourceVersion }, items };
      } catch (err) {
        // The snapshot was compacted away between two pages: only a fresh list is consistent.
        const expired = err instanceof KubeApiError && err.status === 410 && token !== undefined;
        if (!expired || restart >= listRestarts) throw err;
      }
    }
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
  async watch<T>(
    ref: ResourceRef,
    query: Record<string, string>,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
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
      const retryAfterSeconds = parseRetryAfter(typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined);
      throw new KubeApiError('watch', path, res.statusCode ?? 0, status.reason ?? 'Unknown', status.message ?? text.slice(0, 2000), {
        retryAfterSeconds,
      });
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

  #requestOptions(
    method: string,
    path: string,
    contentType: string | undefined,
    agent: http.Agent,
    timeoutMs: number,
  ): https.RequestOptions {
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

  async #json<T>(
    verb: string,
    method: string,
    ref: ResourceRef,
    query: Record<string, string> = {},
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const path = resourcePath(ref);
    const search = new URLSearchParams(query).toString();
    const text = body === undefined ? undefined : JSON.stringify(body);
    let response: RawResponse;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        response = await this.#send(method, search ? `${path}?${search}` : path, text, contentType);
      } catch (err) {
        this.#observe(verb, ref.resource, 'error', (performance.now() - started) / 1000);
        throw new KubeApiError(verb, path, 0, 'NetworkError', err instanceof Error ? err.message : String(err), { cause: err });
      }
      this.#observe(verb, ref.resource, String(response.status), (performance.now() - started) / 1000);
      if (attempt >= this.#retry.attempts || !isRetryableKubeAnswer(verb, response.status)) break;
      await sleep(kubeRetryDelayMs(this.#retry, attempt, Math.random(), parseRetryAfter(response.retryAfter)));
    }
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
    throw new KubeApiError(verb, path, response.status, reason, message, { retryAfterSeconds: parseRetryAfter(response.retryAfter) });
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
        const retryAfter = res.headers['retry-after'];
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
