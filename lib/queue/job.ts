/**
 * What a queued job carries, checked by the worker before any work (a job is data from outside: a bad
 * one fails with a typed error and never reaches the model), and how a typed error travels through a
 * job's failure reason.
 */
import Ajv from 'ajv';
import { TorchSaliencyError } from '../errors.js';
import type { Limits } from '../service/limits.js';
import { MODEL_NAME } from '../service/models.js';
import { explainOptionsSchema, predictOptionsSchema, schemaError } from '../service/schemas.js';
import type { WorkKind } from '../service/work.js';

export const DEFAULT_QUEUE = 'torch-saliency';

export interface JobData {
  kind: WorkKind;
  /** A model's name in the worker's folder. */
  model: string;
  /** The encoded image (JPEG, PNG, WebP), base64. */
  image: string;
  options: Record<string, unknown>;
  /** Epoch milliseconds after which the work is no longer wanted (ERR_DEADLINE). */
  deadline?: number;
}

/** The schema of a job's data, the options checked against the worker's caps as the HTTP service checks them. */
export function jobSchema(limits: Limits): Record<string, unknown> {
  const image = { type: 'string', minLength: 1, maxLength: Math.ceil((limits.maxBodyBytes * 4) / 3) + 4, pattern: '^[A-Za-z0-9+/]*={0,2}$' };
  const common = { model: { type: 'string', pattern: MODEL_NAME.source }, image, deadline: { type: 'number' } };
  return {
    oneOf: [
      {
        type: 'object',
        required: ['kind', 'model', 'image', 'options'],
        properties: { kind: { const: 'explain' }, ...common, options: explainOptionsSchema(limits) },
        additionalProperties: false,
      },
      {
        type: 'object',
        required: ['kind', 'model', 'image', 'options'],
        properties: { kind: { const: 'predict' }, ...common, options: predictOptionsSchema() },
        additionalProperties: false,
      },
    ],
  };
}

type Check = ((data: unknown) => boolean) & { errors?: unknown[] | null };

/** A checker of job data: returns it typed, or throws the typed error the first violation gives. */
export function jobChecker(limits: Limits): (data: unknown) => JobData {
  const ajv = new Ajv({ allowUnionTypes: true, allErrors: false });
  const byKind: Record<string, Check> = {};
  const [explain, predict] = (jobSchema(limits).oneOf as Record<string, unknown>[]).map((s) => ajv.compile(s) as Check);
  byKind.explain = explain;
  byKind.predict = predict;
  return (data: unknown): JobData => {
    const kind = (data as { kind?: unknown } | null)?.kind;
    const check = typeof kind === 'string' ? byKind[kind] : undefined;
    if (!data || typeof data !== 'object' || !check) {
      throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Expected 'predict' or 'explain' for job.kind but received ${JSON.stringify(kind)}`, {
        argument: 'job.kind',
      });
    }
    if (!check(data)) throw schemaError(check.errors as never, data, 'job');
    return data as JobData;
  };
}

/** A failure reason that keeps the error's code and argument: "ERR_X [argument]: message". */
export function failureReason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; argument?: unknown };
  const code = typeof err?.code === 'string' ? err.code : 'ERR_INTERNAL';
  const arg = typeof err?.argument === 'string' ? ` [${err.argument}]` : '';
  return `${code}${arg}: ${typeof err?.message === 'string' ? err.message : String(e)}`;
}

/** The typed error a failure reason stands for. */
export function fromFailureReason(reason: string | undefined): TorchSaliencyError {
  const m = /^([A-Z][A-Z0-9_]+)(?: \[([^\]]+)\])?: ([\s\S]*)$/.exec(reason ?? '');
  if (!m) return new TorchSaliencyError('ERR_JOB_FAILED', reason || 'The job failed');
  return new TorchSaliencyError(m[1], m[3], m[2] ? { argument: m[2] } : {});
}
