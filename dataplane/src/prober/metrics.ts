// The prober's Prometheus metrics: per step and per journey, success and latency. Every series
// exists from the start (at zero), so a dashboard and an alert see the prober before it fails.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { journeySteps, type StepResult } from './journey.ts';

/** Every metric the prober exports, registered in `registry`. */
export class ProberMetrics {
  readonly registry = new Registry();
  readonly stepDuration = new Histogram({
    name: 'meshwork_prober_step_duration_seconds',
    help: 'Time of each step of the probe journey (create, upload, notify, download, delete), by step and outcome.',
    labelNames: ['step', 'outcome'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly steps = new Counter({
    name: 'meshwork_prober_steps_total',
    help: 'Steps of the probe journey run, by step and outcome (ok, error).',
    labelNames: ['step', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly journeys = new Counter({
    name: 'meshwork_prober_journeys_total',
    help: 'Probe journeys run, by outcome (ok: every step succeeded; error).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'meshwork_prober_last_success_timestamp_seconds',
    help: 'When the last journey that succeeded ended (Unix time); 0 before the first.',
    registers: [this.registry],
  });

  constructor() {
    for (const step of journeySteps) for (const outcome of ['ok', 'error']) this.steps.labels(step, outcome).inc(0);
    for (const outcome of ['ok', 'error']) this.journeys.labels(outcome).inc(0);
    this.lastSuccess.set(0);
    collectDefaultMetrics({ register: this.registry, prefix: 'meshwork_prober_' });
  }

  /** Records one step. */
  step(result: StepResult): void {
    const outcome = result.ok ? 'ok' : 'error';
    this.steps.labels(result.step, outcome).inc();
    this.stepDuration.labels(result.step, outcome).observe(result.seconds);
  }

  /** Records one journey, ended at `nowMs`. */
  journey(ok: boolean, nowMs: number): void {
    this.journeys.labels(ok ? 'ok' : 'error').inc();
    if (ok) this.lastSuccess.set(nowMs / 1000);
  }
}
