/**
 * The service's Prometheus metrics (prom-client): one Registry per service, the process's default
 * metrics (CPU, memory, event-loop lag, GC), and the service's own. Labels are of low cardinality: route
 * pattern, HTTP method, status, model name (as configured), method name, reason. Never a user's value.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { binding } from '../native.js';
import type { BatchCall } from '../batching/batcher.js';

export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route' | 'method'>;
  rejected: Counter<'reason'>;
  cancelled: Counter<'reason'>;
  batchJobs: Histogram<'model' | 'kind' | 'method'>;
  merged: Counter<'model' | 'kind'>;
  nativeSeconds: Histogram<'model' | 'kind' | 'method' | 'outcome'>;
  cacheReleased: Counter<string>;
  /** Hooks a batcher's calls to the histograms. */
  observeCall(model: string, call: BatchCall): void;
}

export function createMetrics(sources: { queued: () => Record<string, number>; running: () => Record<string, number> }): ServiceMetrics {
  const registry = new Registry();
  const prefix = 'torch_saliency_';
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const requests = new Counter({
    name: `${prefix}http_requests_total`,
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}http_request_duration_seconds`,
    help: 'Time from a request to its answer',
    labelNames: ['route', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const rejected = new Counter({
    name: `${prefix}rejected_total`,
    help: 'Requests refused by a limit (body, pixels, caps, queue full, connections)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const cancelled = new Counter({
    name: `${prefix}cancelled_total`,
    help: 'Requests whose work was cancelled: client left, deadline passed, shutdown',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const batchJobs = new Histogram({
    name: `${prefix}batch_jobs`,
    help: 'Images (jobs) merged into one native call',
    labelNames: ['model', 'kind', 'method'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const merged = new Counter({
    name: `${prefix}batch_merged_jobs_total`,
    help: 'Jobs that shared a native call with an earlier job (a call of n jobs adds n - 1)',
    labelNames: ['model', 'kind'] as const,
    registers: [registry],
  });
  const nativeSeconds = new Histogram({
    name: `${prefix}native_call_seconds`,
    help: 'Duration of native predict/explain calls, by method and outcome',
    labelNames: ['model', 'kind', 'method', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  new Gauge({
    name: `${prefix}queue_depth`,
    help: 'Images waiting for a native call, by model',
    labelNames: ['model'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [model, n] of Object.entries(sources.queued())) this.set({ model }, n);
    },
  });
  new Gauge({
    name: `${prefix}native_calls_running`,
    help: 'Native calls in flight, by model',
    labelNames: ['model'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [model, n] of Object.entries(sources.running())) this.set({ model }, n);
    },
  });
  new Gauge({
    name: `${prefix}cpu_cache_bytes`,
    help: 'Free CPU blocks the native allocator keeps for reuse (given back when the service is idle; see releaseCacheAfterMs)',
    registers: [registry],
    collect() {
      this.set(binding().runtime().cpuCache.cachedBytes);
    },
  });
  new Gauge({
    name: `${prefix}cpu_cache_limit_bytes`,
    help: 'Most bytes the CPU block cache may keep (TORCH_SALIENCY_CPU_CACHE_MB)',
    registers: [registry],
    collect() {
      this.set(binding().runtime().cpuCache.limitBytes);
    },
  });
  const cacheReleased = new Counter({
    name: `${prefix}cpu_cache_released_bytes_total`,
    help: 'Bytes of CPU block cache given back to the system when the service went idle',
    registers: [registry],
  });
  return {
    registry,
    requests,
    duration,
    rejected,
    cancelled,
    batchJobs,
    merged,
    nativeSeconds,
    cacheReleased,
    observeCall(model, call) {
      batchJobs.observe({ model, kind: call.kind, method: call.method }, call.jobs);
      if (call.jobs > 1) merged.inc({ model, kind: call.kind }, call.jobs - 1);
      nativeSeconds.observe({ model, kind: call.kind, method: call.method, outcome: call.outcome }, call.ms / 1000);
    },
  };
}
