/**
 * Where the HTTP front sends its work: to models in this process (one batcher per model), or to a
 * BullMQ queue that workers consume (lib/queue/producer.ts). The routes see only this interface.
 */
import { binding } from '../native.js';
import { ModelBatcher, type BatchCall } from '../batching/batcher.js';
import type { Limits } from './limits.js';
import { findModel, type ServedModel } from './models.js';
import { perform, type WorkKind } from './work.js';

export interface ModelSummary {
  name: string;
  device?: string;
  labels?: number;
  size?: [number, number];
  inputChannels?: number;
}

export interface WorkExecutor {
  /** The models work may name. */
  models(): Promise<ModelSummary[]>;
  /** Whether work can be taken (models loaded, queue reachable). */
  ready(): Promise<boolean>;
  run(model: string, kind: WorkKind, image: Buffer, options: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** Images waiting and native calls running, by model (local work only). */
  queued(): Record<string, number>;
  running(): Record<string, number>;
  /** Refuses whatever still waits (shutdown). */
  rejectQueued(error: unknown): void;
  close(): Promise<void>;
}

export class LocalExecutor implements WorkExecutor {
  readonly #served = new Map<string, ServedModel>();
  readonly #batchers = new Map<string, ModelBatcher>();
  readonly #limits: Limits;

  constructor(
    models: readonly ServedModel[],
    limits: Limits,
    batching: { maxBatch: number; concurrency: number },
    onCall: (model: string, call: BatchCall) => void,
  ) {
    this.#limits = limits;
    for (const s of models) {
      this.#served.set(s.name, s);
      this.#batchers.set(s.name, new ModelBatcher(s.model, { ...batching, maxQueue: limits.maxQueue, onCall: (call) => onCall(s.name, call) }));
    }
  }

  async models(): Promise<ModelSummary[]> {
    return [...this.#served.values()].map((s) => {
      const info = s.model.disposed ? undefined : s.model.info();
      return { name: s.name, device: s.model.device, labels: s.model.labels?.length, size: s.size, inputChannels: info?.inputChannels };
    });
  }

  async ready(): Promise<boolean> {
    return [...this.#served.values()].every((s) => !s.model.disposed);
  }

  run(model: string, kind: WorkKind, image: Buffer, options: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    const served = findModel(this.#served, model);
    return perform({ served, batcher: this.#batchers.get(served.name)! }, kind, image, options, this.#limits, { signal });
  }

  queued(): Record<string, number> {
    return Object.fromEntries([...this.#batchers].map(([name, b]) => [name, b.queued]));
  }

  running(): Record<string, number> {
    return Object.fromEntries([...this.#batchers].map(([name, b]) => [name, b.running]));
  }

  /** Batcher counters summed over the models. */
  stats(): { calls: number; merged: number } {
    let calls = 0;
    let merged = 0;
    for (const b of this.#batchers.values()) {
      const s = b.stats();
      calls += s.calls;
      merged += s.merged;
    }
    return { calls, merged };
  }

  rejectQueued(error: unknown): void {
    for (const b of this.#batchers.values()) b.rejectQueued(error);
  }

  async close(): Promise<void> {}

  /** Gives the native allocator's free blocks back; returns the bytes released. */
  releaseCache(): number {
    return binding().releaseCpuCache();
  }
}
