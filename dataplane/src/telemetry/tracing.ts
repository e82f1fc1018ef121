// Tracing as the rest of the code sees it: server spans for incoming requests, child spans
// around store calls, W3C trace context on outgoing requests, and the active ids for log
// lines. Without an OTLP endpoint no span is made and none of OpenTelemetry is loaded, so a pod
// that does not export traces pays neither the memory nor the time (see ADR 9); a request that
// came with a `traceparent` still has its trace_id on its log lines.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Attributes a span may carry. */
export type SpanAttributes = Record<string, string | number | boolean>;

/** The server span of one request, ended when the response is done. */
export interface RequestSpan {
  /** Ends the span, naming it by the route pattern that served the request. */
  end(route: string, status: number): void;
}

/** A client span around a call whose end is known only later (a forwarded request whose answer is still streaming). */
export interface ClientSpan {
  /** Adds this span's trace context (`traceparent`, `tracestate`) to the call's headers. */
  inject(headers: Record<string, string>): void;
  /** Ends the span with the answer's status, or with what went wrong when there was none. */
  end(outcome: { status: number } | { error: string }): void;
}

/** Ids of the active span, in the form log lines carry them. */
export interface TraceIds {
  trace_id: string;
  /** Absent when no span is made here (export off): the line only joins the caller's trace. */
  span_id?: string;
}

/** What the data plane needs from a tracer. */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Starts the server span of an incoming request (continuing the caller's trace when it sent
   * a W3C `traceparent`) and runs `handle` inside it, so that everything the request does is
   * its child; undefined when tracing is off (then `handle` simply runs).
   */
  serveRequest(req: IncomingMessage, res: ServerResponse, handle: () => void): RequestSpan | undefined;
  /**
   * Runs `fn` in a child span of the active span (a client span: a call to another service);
   * outside any span it just runs `fn`, so background work does not start traces of its own.
   */
  inSpan<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T>;
  /**
   * Starts a client span, child of the active span, for a call that `end` closes later; undefined
   * outside any span or when tracing is off.
   */
  startClientSpan(name: string, attributes: SpanAttributes): ClientSpan | undefined;
  /** Runs `fn` as the root span of a new trace (a client's operation, a prober's journey). */
  startTrace<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T>;
  /** Adds the active trace context (`traceparent`, `tracestate`) to outgoing request headers. */
  inject(headers: Record<string, string>): void;
  /** Ids of the active span, if any. */
  activeIds(): TraceIds | undefined;
  /** Exports the spans still buffered (within `timeoutMs`) and stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Tracing that does nothing at all (tests, tools). */
export const noTracing: Tracing = {
  enabled: false,
  serveRequest(_req, _res, handle) {
    handle();
    return undefined;
  },
  inSpan: (_name, _attributes, fn) => fn(),
  startClientSpan: () => undefined,
  startTrace: (_name, _attributes, fn) => fn(),
  inject: () => undefined,
  activeIds: () => undefined,
  shutdown: () => Promise.resolve(),
};

// W3C trace context: version-traceid-parentid-flags, lower-case hex; version ff and all-zero
// ids are invalid; a later version may append fields after a dash.
const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace id of a W3C `traceparent` header, or undefined when it is absent or malformed. */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = traceparentPattern.exec(traceparent.trim());
  if (m === null) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined;
  return traceId;
}

/**
 * Tracing without export: no span is made and nothing is sent, but a request that came with a
 * valid `traceparent` runs with the caller's trace id in an AsyncLocalStorage, so that its log
 * lines carry `trace_id`. The default without an OTLP endpoint; it loads none of OpenTelemetry.
 */
export function logOnlyTracing(): Tracing {
  const store = new AsyncLocalStorage<TraceIds>();
  return {
    ...noTracing,
    serveRequest(req, _res, handle) {
      const traceId = traceIdOf(req.headers.traceparent);
      if (traceId === undefined) handle();
      else store.run({ trace_id: traceId }, handle);
      return undefined;
    },
    activeIds: () => store.getStore(),
  };
}

/** Where and as what a process exports its traces. */
export interface TracingOptions {
  /** `service.name` of the spans ("meshwork-partition"). */
  serviceName: string;
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); tracing is off when undefined. */
  endpoint: string | undefined;
  /** Extra resource attributes (partition name, pod name). */
  resource?: SpanAttributes;
  /** Receives the SDK's own warnings and errors (a failed export, say). */
  warn?: (message: string) => void;
}

/** Starts tracing when an endpoint is configured, loading OpenTelemetry only then. */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  if (options.endpoint === undefined) return logOnlyTracing();
  const { startOtelTracing } = await import('./otel.ts');
  return startOtelTracing({ ...options, endpoint: options.endpoint });
}
