/**
 * An HTTP service over one loaded model, for concurrent requests. Requests are batched, not raced:
 * predictions share native batches (lib/batcher.ts), and explain requests that ask for the same method
 * and options and arrive while the model is busy are merged into one explain call, so one batch goes
 * through the model per optimisation step for all of them. Endpoints:
 *
 *   GET  /health                 { ok, device, pending, queued }
 *   GET  /stats                  request and merge counters
 *   POST /predict?top=5          body: image bytes (JPEG, PNG, WebP) -> { top: [{ index, label, probability }] }
 *   POST /explain?method=grad-cam&layer=features.5&target=top-1[&picture=overlay][&data=1]
 *                                body: image bytes -> { method, options, targets, maps: [...], details, batch }
 *
 * Option values in the query are parsed like the CLI's (numbers, comma lists, true/false).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TorchSaliencyError, invalidValue, isCallerError } from '../errors.js';
import { jsonValue, type Explanation, type PictureKind } from '../explanation.js';
import { readImage, type Fit, type Image } from '../image.js';
import type { Model } from '../model.js';
import type { ExplainOptions } from '../methods/index.js';
import * as v from '../validate.js';
import { parseValue } from '../parse.js';
import { takeGroup } from '../batcher.js';

export interface ServiceOptions {
  /** Size incoming images are resized to (default: their own size; requests of different sizes are never merged). */
  size?: number | [number, number];
  fit?: Fit;
  /** Most images merged into one explain call (default 16). */
  maxBatch?: number;
  /** Explain calls running at once (default 1: one call already takes every core). */
  concurrency?: number;
  /** Largest request body in bytes (default 32 MiB). */
  maxBodyBytes?: number;
}

export interface ServiceStats {
  requests: number;
  predictRequests: number;
  explainRequests: number;
  /** Native explain calls made for the explain requests (fewer than the requests when merged). */
  explainCalls: number;
  /** Largest number of requests merged into one call so far. */
  largestMerge: number;
  errors: number;
  queued: number;
  running: number;
}

interface ExplainJob {
  key: string;
  image: Image;
  /** The query's options, as text parsed: explain checks them. */
  options: { method: string; [option: string]: unknown };
  target: unknown;
  resolve: (r: { explanation: Explanation; index: number; batch: number }) => void;
  reject: (e: unknown) => void;
}

export class SaliencyService {
  readonly model: Model;
  readonly server: Server;
  readonly #size?: [number, number];
  readonly #fit: Fit;
  readonly #maxBatch: number;
  readonly #concurrency: number;
  readonly #maxBody: number;
  #queue: ExplainJob[] = [];
  #running = 0;
  #stats = { requests: 0, predictRequests: 0, explainRequests: 0, explainCalls: 0, largestMerge: 0, errors: 0 };

  constructor(model: Model, options: ServiceOptions = {}) {
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['size', 'fit', 'maxBatch', 'concurrency', 'maxBodyBytes']);
    this.model = model;
    this.#size = opts.size === undefined ? undefined : v.size('options.size', opts.size);
    this.#fit = v.oneOf<Fit>('options.fit', opts.fit, ['cover', 'contain', 'fill'], 'cover');
    this.#maxBatch = v.optionalNumber('options.maxBatch', opts.maxBatch, 16, { integer: true, min: 1 });
    this.#concurrency = v.optionalNumber('options.concurrency', opts.concurrency, 1, { integer: true, min: 1 });
    this.#maxBody = v.optionalNumber('options.maxBodyBytes', opts.maxBodyBytes, 32 * 1024 * 1024, { integer: true, min: 1 });
    this.server = createServer((req, res) => {
      this.#handle(req, res).catch((e) => this.#fail(res, e));
    });
  }

  /** Starts listening (default on loopback, a free port); resolves to the address. */
  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting connections and waits for open ones to finish. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
  }

  stats(): ServiceStats {
    return { ...this.#stats, queued: this.#queue.length, running: this.#running };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#stats.requests++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/health') {
      return this.#send(res, 200, { ok: !this.model.disposed, device: this.model.device, pending: this.model.pending, queued: this.#queue.length });
    }
    if (req.method === 'GET' && url.pathname === '/stats') return this.#send(res, 200, this.stats());
    if (req.method === 'POST' && (url.pathname === '/predict' || url.pathname === '/explain')) {
      const body = await this.#body(req);
      const image = await readImage(body, { size: this.#size, fit: this.#fit });
      const query: Record<string, unknown> = {};
      for (const [k, val] of url.searchParams) query[k] = parseValue(val);
      if (url.pathname === '/predict') {
        this.#stats.predictRequests++;
        const top = query.top === undefined ? 5 : query.top;
        const p = await this.model.predict(image, { top: top as number });
        return this.#send(res, 200, { top: p.top });
      }
      this.#stats.explainRequests++;
      return this.#send(res, 200, await this.#explain(image, query));
    }
    this.#send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `No route for ${req.method} ${url.pathname}` } });
  }

  async #explain(image: Image, query: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { picture, data, target, ...options } = query;
    if (picture !== undefined && !['overlay', 'heatmap', 'mask', 'none'].includes(String(picture))) {
      throw invalidValue('picture', "one of 'overlay', 'heatmap', 'mask', 'none'", picture);
    }
    const method = options.method;
    if (typeof method !== 'string') throw invalidValue('method', 'a method name in the query (?method=...)', method);
    // Requests with the same options and image size can share one call; the key says which.
    const key = JSON.stringify([image.channels, image.height, image.width, Object.entries(options).sort()]);
    const { explanation, index, batch } = await new Promise<{ explanation: Explanation; index: number; batch: number }>((resolve, reject) => {
      this.#queue.push({ key, image, options: { ...options, method }, target, resolve, reject });
      this.#pump();
    });
    const mine = explanation.maps.map((m, i) => ({ m, i })).filter(({ m }) => m.image === index);
    const maps = await Promise.all(
      mine.map(async ({ m }) => {
        const out: Record<string, unknown> = { ...m.toJSON(), image: 0 };
        if (picture && picture !== 'none') {
          const png = await m.png(picture as PictureKind, image);
          out.png = png.toString('base64');
        }
        if (data === true || data === 1) out.data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString('base64');
        return out;
      }),
    );
    // Per-map details (arrays with one entry per map) are sliced to this request's maps.
    const details: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(explanation.details)) {
      const list = Array.isArray(val) || ArrayBuffer.isView(val) ? (val as ArrayLike<unknown>) : undefined;
      details[k] = list && list.length === explanation.maps.length ? mine.map(({ i }) => jsonValue(list[i])) : jsonValue(val);
    }
    return {
      method: explanation.method,
      options: explanation.options,
      targets: explanation.targets.filter((t) => t.image === index).map((t) => ({ ...t, image: 0 })),
      maps,
      details,
      batch,
      timings: explanation.timings,
    };
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      const { group, rest } = takeGroup(this.#queue, this.#maxBatch, () => 1);
      this.#queue = rest;
      this.#running++;
      this.#stats.explainCalls++;
      this.#stats.largestMerge = Math.max(this.#stats.largestMerge, group.length);
      const options: ExplainJob['options'] = { ...group[0].options, target: group.map((j) => j.target ?? 'top-1') };
      this.model
        .explain(
          group.map((j) => j.image),
          options as ExplainOptions,
        )
        .then(
          (explanation) => group.forEach((j, index) => j.resolve({ explanation, index, batch: group.length })),
          (e) => group.forEach((j) => j.reject(e)),
        )
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }

  #body(req: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.#maxBody) {
          reject(
            new TorchSaliencyError('ERR_OUT_OF_RANGE', `Expected a body of at most ${this.#maxBody} bytes for image but received more`, { argument: 'image' }),
          );
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  #fail(res: ServerResponse, e: unknown): void {
    this.#stats.errors++;
    const err = e as TorchSaliencyError;
    if (res.headersSent) return void res.end();
    this.#send(res, isCallerError(e) ? 400 : 500, {
      error: { code: err?.code ?? 'ERR_INTERNAL', message: err?.message ?? String(e), argument: err?.argument },
    });
  }
}

/** An HTTP service over `model`; call listen() to start it. */
export function createService(model: Model, options: ServiceOptions = {}): SaliencyService {
  return new SaliencyService(model, options);
}
