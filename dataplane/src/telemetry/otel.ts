// The OpenTelemetry implementation of Tracing, loaded only when an OTLP endpoint is set: an
// AsyncLocalStorage context manager, the W3C trace-context propagator, and a batching OTLP/HTTP
// (JSON) exporter. Spans are made by hand around our own store calls (ADR 9).
import { context, diag, DiagLogLevel, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import type { ClientSpan, RequestSpan, SpanAttributes, TraceIds, Tracing, TracingOptions } from './tracing.ts';

/** Reads a positive integer from the environment, or the fallback. */
function envInteger(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

/** Root spans are all sampled unless OTEL_TRACES_SAMPLER asks for a ratio; a caller's decision is kept. */
function samplerFromEnv(): Sampler {
  const ratio = Number(process.env.OTEL_TRACES_SAMPLER_ARG);
  if (process.env.OTEL_TRACES_SAMPLER === 'parentbased_traceidratio' && ratio >= 0 && ratio <= 1) {
    return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
  return new ParentBasedSampler({ root: new AlwaysOnSampler() });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Runs `fn` and ends `span` after it, marking the span failed if `fn` throws. */
async function runInSpan<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
    span.setAttribute('error.type', err instanceof Error ? err.name : 'error');
    throw err;
  } finally {
    span.end();
  }
}

/** Starts the OpenTelemetry SDK and returns Tracing backed by it. */
export function startOtelTracing(options: TracingOptions & { endpoint: string }): Tracing {
  if (options.warn) {
    const warn = options.warn;
    const ignore = (): void => undefined;
    diag.setLogger({ error: warn, warn, info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);
  }
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.serviceName,
    'service.namespace': 'meshwork',
    ...options.resource,
  }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override ours, as everywhere else.
    detectResources({ detectors: [envDetector] }),
  );
  // The exporter still reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION itself.
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new TracerProvider({
    resource,
    sampler: samplerFromEnv(),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: envInteger('OTEL_BSP_SCHEDULE_DELAY', 5000),
        maxQueueSize: envInteger('OTEL_BSP_MAX_QUEUE_SIZE', 2048),
        maxExportBatchSize: envInteger('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512),
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer('meshwork');

  return {
    enabled: true,

    serveRequest(req, res, handle): RequestSpan {
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      const method = req.method ?? 'GET';
      // Named by the route once it is known; raw paths are not recorded (they hold file names).
      const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: method } }, parent);
      const active = trace.setSpan(parent, span);
      // Events of the request and response are emitted by the socket, outside the request's
      // context: bound here, listeners added later ('close', stream pipelines) run inside it.
      // (The JSON body parser restores the context itself.)
      context.bind(active, req);
      context.bind(active, res);
      context.with(active, handle);
      return {
        end(route, status) {
          span.updateName(`${method} ${route}`);
          span.setAttribute(ATTR_HTTP_ROUTE, route);
          span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },

    async inSpan<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
      // Store calls outside any request (sweeper, readiness pings) would each start a trace of
      // their own: noise, so they run untraced.
      if (trace.getSpan(context.active()) === undefined) return fn();
      return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, (span: Span) => runInSpan(span, fn));
    },

    startClientSpan(name: string, attributes: SpanAttributes): ClientSpan | undefined {
      const parent = context.active();
      if (trace.getSpan(parent) === undefined) return undefined;
      const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
      const active = trace.setSpan(parent, span);
      let ended = false;
      return {
        inject(headers) {
          propagation.inject(active, headers);
        },
        end(outcome) {
          if (ended) return;
          ended = true;
          if ('status' in outcome) {
            span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, outcome.status);
            if (outcome.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          } else {
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
            span.setAttribute('error.type', outcome.error);
          }
          span.end();
        },
      };
    },

    async startTrace<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
      return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes, root: true }, (span: Span) => runInSpan(span, fn));
    },

    inject(headers) {
      propagation.inject(context.active(), headers);
    },

    activeIds(): TraceIds | undefined {
      const span = trace.getSpan(context.active());
      if (span === undefined) return undefined;
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },

    async shutdown(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      });
      await Promise.race([
        provider.shutdown().catch((err: unknown) => options.warn?.(`Failed to flush traces: ${errorMessage(err)}`)),
        deadline,
      ]);
      clearTimeout(timer);
    },
  };
}
