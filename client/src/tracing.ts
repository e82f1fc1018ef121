// Tracing for Node programs that use the client (the `meshwork` command, the device agent, a
// tool): OpenTelemetry with an OTLP/HTTP (JSON) exporter, loaded only when an endpoint is given,
// so that a program that does not trace pays nothing. `startTrace` makes the root span of an
// operation; every request the client sends inside it is a child span whose `traceparent`
// goes out with the request, so the gateway and the partition continue the same trace.
// Node-only: reached through `@meshwork/client/tracing`, never from the main entry point.
import type { Span } from '@opentelemetry/api';
import type { ClientTracing } from './client.ts';

/** Tracing a client program can start traces with. */
export interface ClientTracer extends ClientTracing {
  /** Runs `fn` as the root span of a new trace. */
  startTrace<T>(name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T>;
  /** The active trace's id (32 hex digits), if any. */
  activeTraceId(): string | undefined;
  /** Exports the spans still buffered (within `timeoutMs`) and stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

export interface ClientTracingOptions {
  /** `service.name` of the spans (default "meshwork-client"). */
  serviceName?: string;
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); no tracing when undefined or empty. */
  endpoint: string | undefined;
  /** Receives the SDK's own warnings (a failed export, say). */
  warn?: (message: string) => void;
}

/** Starts tracing when an endpoint is set (OpenTelemetry is loaded only then); undefined otherwise. */
export async function startClientTracing(options: ClientTracingOptions): Promise<ClientTracer | undefined> {
  if (options.endpoint === undefined || options.endpoint === '') return undefined;
  const [api, hooks, core, otlp, resources, sdk] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace'),
  ]);
  const { context, diag, DiagLogLevel, propagation, SpanKind, SpanStatusCode, trace } = api;
  if (options.warn) {
    const warn = options.warn;
    const ignore = (): void => undefined;
    diag.setLogger({ error: warn, warn, info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);
  }
  context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  const resource = resources
    .resourceFromAttributes({ 'service.name': options.serviceName ?? 'meshwork-client', 'service.namespace': 'meshwork' })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const exporter = new otlp.OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new sdk.TracerProvider({
    resource,
    sampler: new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter })],
  });
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer('meshwork-client');

  const run = async <T>(span: Span, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  };

  return {
    async inSpan(name, attributes, fn) {
      if (trace.getSpan(context.active()) === undefined) return fn();
      return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, (span) => run(span, fn));
    },
    async startTrace(name, attributes, fn) {
      return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes, root: true }, (span) => run(span, fn));
    },
    inject(headers) {
      propagation.inject(context.active(), headers);
    },
    activeTraceId() {
      return trace.getSpan(context.active())?.spanContext().traceId;
    },
    async shutdown(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      });
      await Promise.race([provider.shutdown().catch((err: unknown) => options.warn?.(`failed to flush traces: ${String(err)}`)), deadline]);
      clearTimeout(timer);
    },
  };
}
