/**
 * The work routes: POST /v1/models/:name/{predict,explain}, and /predict, /explain for the default model.
 * Images come as the raw body (one image), as multipart files (one or more; other fields are options),
 * or as a JSON body `{ image | images: base64, options }`. Options come from the query or the body, never
 * both for one name. Each request's work gets an AbortSignal that fires when its deadline passes (504),
 * when its client disconnects, or when the service shuts down.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TorchSaliencyError, invalidType, invalidValue, outOfRange } from '../../errors.js';
import { deadlineExceeded, modelNotFound } from '../errors.js';
import { LIMIT_FLAGS } from '../limits.js';
import { MODEL_NAME } from '../models.js';
import { explainOptionsSchema, jsonBodySchema, parseQuery, predictOptionsSchema, schemaError } from '../schemas.js';
import type { WorkKind } from '../work.js';

interface Inputs {
  images: Buffer[];
  /** Several images were sent (the answer is `{ results: [...] }`). */
  many: boolean;
  options: Record<string, unknown>;
}

type Validator = ((data: unknown) => boolean) & { errors?: unknown[] | null };

export async function workRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ctx;
  const { limits, metrics } = ctx;
  const optionSchemas: Record<WorkKind, Record<string, unknown>> = {
    explain: { ...explainOptionsSchema(limits), required: [] },
    predict: predictOptionsSchema(),
  };

  async function readInputs(request: FastifyRequest, kind: WorkKind): Promise<Inputs> {
    if (request.isMultipart()) {
      const images: Buffer[] = [];
      const fields: Record<string, unknown> = {};
      let total = 0;
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          const bytes = await part.toBuffer();
          total += bytes.length;
          if (total > limits.maxBodyBytes) {
            throw new TorchSaliencyError('ERR_BODY_TOO_LARGE', `Expected images of at most ${limits.maxBodyBytes} bytes in all for images but received more`, {
              argument: 'images',
            });
          }
          images.push(bytes);
        } else {
          const prev = fields[part.fieldname];
          fields[part.fieldname] = prev === undefined ? part.value : ([] as unknown[]).concat(prev, part.value);
        }
      }
      const options = parseQuery(fields);
      const validate = request.compileValidationSchema(optionSchemas[kind]) as Validator;
      if (!validate(options)) throw schemaError(validate.errors as never, options, 'options');
      return { images, many: images.length > 1, options };
    }
    const body = request.body;
    if (Buffer.isBuffer(body)) return { images: [body], many: false, options: {} };
    if (body && typeof body === 'object') {
      const b = body as { image?: string; images?: string[]; options?: Record<string, unknown> };
      if (b.image !== undefined && b.images !== undefined) throw invalidValue('images', 'image or images, not both', 'both');
      const list = b.images ?? (b.image !== undefined ? [b.image] : []);
      return { images: list.map((s) => Buffer.from(s, 'base64')), many: b.images !== undefined, options: b.options ?? {} };
    }
    return { images: [], many: false, options: {} };
  }

  function mergeOptions(query: Record<string, unknown>, body: Record<string, unknown>): Record<string, unknown> {
    for (const key of Object.keys(body)) {
      if (key in query) throw invalidValue(`options.${key}`, 'one value (given both in the query and in the body)', body[key]);
    }
    return { ...query, ...body };
  }

  const handler = (kind: WorkKind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const params = request.params as { name?: string };
    const name = params.name ?? ctx.defaultModel;
    if (name === undefined) {
      throw modelNotFound(
        '(none: this service serves several models; POST /v1/models/<name>/' + kind + ')',
        (await ctx.executor.models()).map((m) => m.name),
      );
    }
    if (kind === 'predict') ctx.stats.predictRequests++;
    else ctx.stats.explainRequests++;
    const inputs = await readInputs(request, kind);
    if (inputs.images.length === 0 || inputs.images.some((b) => b.length === 0)) {
      throw invalidType('image', "the image's bytes (JPEG, PNG or WebP) as the body, as multipart files, or as base64 in a JSON body", undefined);
    }
    if (inputs.images.length > limits.maxImages) {
      throw outOfRange(
        'images',
        `at most ${limits.maxImages} images (this service's limit; the operator sets it with ${LIMIT_FLAGS.maxImages})`,
        inputs.images.length,
      );
    }
    const options = mergeOptions(request.query as Record<string, unknown>, inputs.options);
    if (kind === 'explain' && options.method === undefined) throw invalidType('options.method', 'a method name (?method=... or options.method)', undefined);

    const controller = new AbortController();
    ctx.inflight.add(controller);
    const remaining = Math.max(0, limits.timeoutMs - reply.elapsedTime);
    const deadline = setTimeout(() => controller.abort(deadlineExceeded(limits.timeoutMs)), remaining);
    const onClose = () => {
      if (!reply.raw.writableFinished) controller.abort(new TorchSaliencyError('ABORT_ERR', 'The client closed the connection'));
    };
    reply.raw.on('close', onClose);
    try {
      const answers = await Promise.all(inputs.images.map((image) => ctx.executor.run(name, kind, image, options, controller.signal)));
      return inputs.many ? { results: answers } : answers[0];
    } catch (e) {
      if (controller.signal.aborted) {
        const reason = controller.signal.reason as TorchSaliencyError;
        metrics.cancelled.inc({ reason: reason.code === 'ERR_DEADLINE' ? 'deadline' : reason.code === 'ERR_SHUTTING_DOWN' ? 'shutdown' : 'client' });
        throw reason;
      }
      // One image failed: the others' work is no longer wanted.
      controller.abort(e);
      const code = (e as { code?: string }).code;
      if (code === 'ERR_QUEUE_FULL') metrics.rejected.inc({ reason: 'queue' });
      else if (code === 'ERR_IMAGE_TOO_LARGE') metrics.rejected.inc({ reason: 'pixels' });
      else if (code === 'ERR_OUT_OF_RANGE') metrics.rejected.inc({ reason: 'caps' });
      throw e;
    } finally {
      clearTimeout(deadline);
      reply.raw.off('close', onClose);
      ctx.inflight.delete(controller);
      ctx.settled();
    }
  };

  for (const kind of ['predict', 'explain'] as const) {
    const schema = {
      querystring: optionSchemas[kind],
      body: { content: { 'application/json': { schema: jsonBodySchema(limits, optionSchemas[kind]) } } },
    };
    // Repeated parameters are an error, and values are typed as the CLI types its flags, before the schema checks them.
    const preValidation = async (request: FastifyRequest) => {
      request.query = parseQuery(request.query as Record<string, unknown>);
    };
    app.post(`/${kind}`, { schema, preValidation }, handler(kind));
    app.post(
      `/v1/models/:name/${kind}`,
      {
        schema: { ...schema, params: { type: 'object', properties: { name: { type: 'string', pattern: MODEL_NAME.source } }, required: ['name'] } },
        preValidation,
      },
      handler(kind),
    );
  }
}
