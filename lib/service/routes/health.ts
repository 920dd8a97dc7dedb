/**
 * Routes about the service itself: liveness, readiness, Prometheus metrics, counters, and the models it
 * serves.
 */
import type { FastifyInstance } from 'fastify';

const errorResponse = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, argument: { type: 'string' } } } },
};

const modelSummary = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    device: { type: 'string' },
    labels: { type: 'integer' },
    inputChannels: { type: 'integer' },
    size: { type: 'array', items: { type: 'integer' } },
  },
};

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ctx;
  // Live: the process answers. HEAD works too (Fastify answers HEAD for every GET route).
  app.get(
    '/health',
    { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, queued: { type: 'integer' }, running: { type: 'integer' } } } } } },
    async () => {
      const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
      return { ok: true, queued: sum(ctx.executor.queued()), running: sum(ctx.executor.running()) };
    },
  );

  // Ready: models loaded (or the queue reachable) and not shutting down.
  app.get(
    '/ready',
    { schema: { response: { 200: { type: 'object', properties: { ready: { type: 'boolean' } } }, 503: errorResponse } } },
    async (_req, reply) => {
      if (ctx.closing() || !(await ctx.executor.ready())) {
        return reply.code(503).send({ error: { code: 'ERR_NOT_READY', message: ctx.closing() ? 'The service is shutting down' : 'The service is not ready' } });
      }
      return { ready: true };
    },
  );

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/stats', async () => ({ ...ctx.stats, ...(ctx.executor as { stats?: () => object }).stats?.() }));

  app.get('/v1/models', { schema: { response: { 200: { type: 'object', properties: { models: { type: 'array', items: modelSummary } } } } } }, async () => ({
    models: await ctx.executor.models(),
  }));

  app.get(
    '/v1/models/:name',
    {
      schema: {
        params: { type: 'object', properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' } }, required: ['name'] },
        response: { 200: modelSummary, 404: errorResponse },
      },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      const found = (await ctx.executor.models()).find((m) => m.name === name);
      if (!found) return reply.code(404).send({ error: { code: 'ERR_MODEL_NOT_FOUND', message: `No model named ${JSON.stringify(name)}`, argument: 'model' } });
      return found;
    },
  );
}
