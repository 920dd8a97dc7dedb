/**
 * Coalesces concurrent predict requests of one model into shared native batches. Requests that arrive
 * while a batch is running wait and go together in the next one (images of one size per batch, at most
 * `maxBatch` images), so that under load the model runs big batches one after another instead of many
 * small forwards fighting for the same cores.
 */
import type { NativeTensor } from './native.js';

interface Request {
  key: string;
  data: Float32Array;
  shape: [number, number, number, number];
  resolve: (out: { data: Float32Array; classes: number }) => void;
  reject: (e: unknown) => void;
}

/**
 * The next batch from a queue: requests with the first request's key, in order, filling up to `capacity`
 * units (a first request bigger than that goes alone); the others stay queued in order.
 */
export function takeGroup<T extends { key: string }>(queue: readonly T[], capacity: number, size: (item: T) => number): { group: T[]; rest: T[] } {
  const key = queue[0].key;
  const group: T[] = [];
  const rest: T[] = [];
  let used = 0;
  for (const item of queue) {
    if (item.key === key && (group.length === 0 || used + size(item) <= capacity)) {
      group.push(item);
      used += size(item);
    } else rest.push(item);
  }
  return { group, rest };
}

export class Batcher {
  readonly #run: (data: Float32Array, shape: number[]) => Promise<NativeTensor>;
  readonly #maxBatch: number;
  readonly #concurrency: number;
  #queue: Request[] = [];
  #running = 0;
  #scheduled = false;

  constructor(run: (data: Float32Array, shape: number[]) => Promise<NativeTensor>, options: { maxBatch: number; concurrency: number }) {
    this.#run = run;
    this.#maxBatch = options.maxBatch;
    this.#concurrency = options.concurrency;
  }

  /** Requests waiting for a batch. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Native batches in flight. */
  get running(): number {
    return this.#running;
  }

  /** Scores for N images (N x C x H x W); resolves to N x K logits. */
  submit(data: Float32Array, shape: [number, number, number, number]): Promise<{ data: Float32Array; classes: number }> {
    return new Promise((resolve, reject) => {
      const idle = this.#running < this.#concurrency && this.#queue.length === 0 && !this.#scheduled;
      this.#queue.push({ key: shape.slice(1).join('x'), data, shape, resolve, reject });
      // An idle model starts at once (no extra turn of the event loop for a lone call); requests that come
      // while it runs wait and go together in the next batch.
      if (idle) this.#flush();
      else this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running >= this.#concurrency || this.#queue.length === 0) return;
    this.#scheduled = true;
    // Requests made in the same turn of the event loop join this batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      const { group, rest } = takeGroup(this.#queue, this.#maxBatch, (r) => r.shape[0]);
      const images = group.reduce((n, r) => n + r.shape[0], 0);
      this.#queue = rest;
      this.#launch(group, images);
    }
  }

  #launch(group: Request[], images: number): void {
    const [, c, h, w] = group[0].shape;
    const per = c * h * w;
    let data: Float32Array;
    if (group.length === 1) data = group[0].data;
    else {
      data = new Float32Array(images * per);
      let offset = 0;
      for (const r of group) {
        data.set(r.data, offset);
        offset += r.data.length;
      }
    }
    this.#running++;
    let pending: Promise<NativeTensor>;
    try {
      pending = this.#run(data, [images, c, h, w]);
    } catch (e) {
      // A synchronous throw (e.g. ERR_DISPOSED) must reject the group, not escape from setImmediate.
      pending = Promise.reject(e);
    }
    pending.then(
      (out) => {
        const classes = out.shape[1];
        let row = 0;
        for (const r of group) {
          const n = r.shape[0];
          r.resolve({ data: (out.data as Float32Array).subarray(row * classes, (row + n) * classes), classes });
          row += n;
        }
        this.#done();
      },
      (e) => {
        for (const r of group) r.reject(e);
        this.#done();
      },
    );
  }

  /** Sends every queued request to the native side now, whatever the concurrency (used by dispose). */
  drain(): void {
    while (this.#queue.length > 0) {
      const before = this.#queue.length;
      const running = this.#running;
      this.#running = 0;
      this.#flush();
      this.#running += running;
      if (this.#queue.length === before) break;
    }
  }

  #done(): void {
    this.#running--;
    this.#schedule();
  }
}
