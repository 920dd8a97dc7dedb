/**
 * The HTTP service on Fastify: limits checked before work is taken, metrics for every answer, work sent
 * to an executor (models in this process, or a BullMQ queue), and a graceful close that stops accepting,
 * lets work in flight finish for a grace period, then cancels what is left.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import multipart from '@fastify/multipart';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { TorchSaliencyError, outOfRange } from '../errors.js';
import { LIMIT_FLAGS } from './limits.js';
import { errorBody, httpStatus, shuttingDown } from './errors.js';
import type { WorkExecutor } from './executor.js';
import type { Limits } from './limits.js';
import type { ServiceMetrics } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { workRoutes } from './routes/work.js';
import { schemaError } from './schemas.js';

export interface AppContext {
  limits: Limits;
  executor: WorkExecutor;
  metrics: ServiceMetrics;
  /** Model for the routes without a name (/predict, /explain), if any. */
  defaultModel?: string;
  /** Work in flight: each request's controller, to cancel them all on shutdown. */
  inflight: Set<AbortController>;
  closing: () => boolean;
  /** Called when a request's work settles (for the idle cache release). */
  settled: () => void;
  stats: { requests: number; predictRequests: number; explainRequests: number; errors: number };
}

declare module 'fastify' {
  interface FastifyInstance {
    ctx: AppContext;
  }
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const body = errorBody(e);
  const status = httpStatus(body.error.code);
  const retry = (e as { retryAfter?: number }).retryAfter;
  if (status === 429 && retry) reply.header('retry-after', String(retry));
  // The rest of an over-long body is not read: the connection closes after the answer.
  if (status === 413) reply.header('connection', 'close');
  return reply.code(status).send(body);
}

export function buildApp(ctx: AppContext, logger: boolean | object = false): FastifyInstance {
  const { limits, metrics } = ctx;
  const app = Fastify({
    logger,
    bodyLimit: limits.maxBodyBytes,
    // Slow clients: headers and the whole request must arrive in time (Node answers 408 and closes);
    // the server checks every second instead of Node's default 30 s.
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: 0,
    keepAliveTimeout: 5000,
    http: { headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs), connectionsCheckingInterval: 1000 },
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    exposeHeadRoutes: true,
    // Query values are typed before validation (parseQuery) and JSON bodies carry their own types: no coercion.
    ajv: { customOptions: { allowUnionTypes: true, coerceTypes: false, removeAdditional: false } },
  });
  app.decorate('ctx', ctx);
  app.server.maxConnections = limits.maxConnections;
  app.server.on('drop', () => metrics.rejected.inc({ reason: 'connections' }));

  // Image bytes come as the raw body whatever their declared type (curl's --data-binary says form-urlencoded).
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.register(multipart, {
    limits: { fileSize: limits.maxBodyBytes, files: limits.maxImages, fields: 32, fieldSize: 64 * 1024, parts: limits.maxImages + 32 },
  });

  app.addHook('onRequest', async (request, reply) => {
    ctx.stats.requests++;
    // A declared body over the limit is refused before a byte of it is read.
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limits.maxBodyBytes) {
      metrics.rejected.inc({ reason: 'body' });
      return sendError(
        reply,
        new TorchSaliencyError(
          'ERR_BODY_TOO_LARGE',
          `Expected a body of at most ${limits.maxBodyBytes} bytes for image but received a Content-Length of ${declared}`,
          {
            argument: 'image',
          },
        ),
      );
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.duration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) ctx.stats.errors++;
  });

  app.setErrorHandler((error: FastifyError & { validation?: unknown[]; validationContext?: string }, request, reply) => {
    if (error.validation) {
      const context = error.validationContext;
      const data = context === 'querystring' ? request.query : context === 'params' ? request.params : request.body;
      return sendError(reply, schemaError(error.validation as never, data, context === 'body' ? '' : context === 'params' ? 'params' : 'options'));
    }
    const code = error.code;
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      metrics.rejected.inc({ reason: 'caps' });
      return sendError(
        reply,
        outOfRange('images', `at most ${limits.maxImages} images (this service's limit; the operator sets it with ${LIMIT_FLAGS.maxImages})`, 'more'),
      );
    }
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || code === 'FST_REQ_FILE_TOO_LARGE') {
      metrics.rejected.inc({ reason: 'body' });
      return sendError(
        reply,
        new TorchSaliencyError('ERR_BODY_TOO_LARGE', `Expected a body of at most ${limits.maxBodyBytes} bytes for image but received more`, {
          argument: 'image',
        }),
      );
    }
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, new TorchSaliencyError('ERR_UNSUPPORTED_MEDIA_TYPE', error.message));
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.name === 'SyntaxError') {
      return sendError(
        reply,
        new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Expected a JSON body but received text that does not parse (${error.message})`, { argument: 'body' }),
      );
    }
    if (code?.startsWith('FST_') && (error.statusCode ?? 500) < 500) {
      return sendError(reply, new TorchSaliencyError('ERR_INVALID_ARG_VALUE', error.message, { argument: 'body' }));
    }
    if (!(error instanceof TorchSaliencyError)) request.log.error(error);
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new TorchSaliencyError('ERR_NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );

  app.register(healthRoutes);
  app.register(workRoutes);
  return app;
}

/** Cancels every request's work (shutdown after the grace period). */
export function cancelAll(ctx: AppContext, reason: TorchSaliencyError = shuttingDown()): void {
  ctx.executor.rejectQueued(reason);
  for (const c of ctx.inflight) c.abort(reason);
}

export async function listen(app: FastifyInstance, port: number, host: string): Promise<AddressInfo> {
  await app.listen({ port, host });
  return (app.server as Server).address() as AddressInfo;
}
