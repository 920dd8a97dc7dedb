/**
 * JSON schemas of what a request (or a queued job) may carry, built from the operator's limits so that
 * one schema both checks types and enforces the caps; and the translation of a schema violation into the
 * library's typed error ("Expected <what> for <argument> but received <value>").
 */
import { TorchSaliencyError, describe, invalidValue, outOfRange } from '../errors.js';
import { methodNames } from '../methods/index.js';
import { parseValue } from '../parse.js';
import { LIMIT_FLAGS, type Limits } from './limits.js';

/** Options whose maximum is an operator's limit, and which limit. */
const CAPPED: Readonly<Record<string, keyof Limits>> = {
  maxIter: 'maxIter',
  numMasks: 'maxNumMasks',
  samples: 'maxSamples',
  iterations: 'maxIterations',
  areas: 'maxAreas',
  target: 'maxTargets',
};

// null too: the options an answer reports (e.g. grid: null, prefixTokens: null) can be sent back as they are.
const PLAIN = ['string', 'number', 'boolean', 'array', 'null'];

/** Explain options (method options, target, and what the answer carries: picture, data). */
export function explainOptionsSchema(limits: Limits): Record<string, unknown> {
  const capped = (max: number) => ({ type: 'integer', minimum: 1, maximum: max });
  return {
    type: 'object',
    required: ['method'],
    properties: {
      method: { type: 'string', enum: methodNames() },
      target: {
        type: ['string', 'integer', 'array'],
        minimum: 0,
        maxItems: limits.maxTargets,
        minItems: 1,
        items: { type: ['string', 'integer'], minimum: 0 },
      },
      picture: { type: 'string', enum: ['overlay', 'heatmap', 'mask', 'preserved', 'none'] },
      data: { type: ['boolean', 'integer'], enum: [true, false, 0, 1] },
      maxIter: capped(limits.maxIter),
      numMasks: capped(limits.maxNumMasks),
      samples: capped(limits.maxSamples),
      iterations: capped(limits.maxIterations),
      areas: { type: ['number', 'array'], maxItems: limits.maxAreas, minItems: 1, items: { type: 'number' } },
      resize: { type: ['boolean', 'integer', 'array'], minimum: 1, minItems: 2, maxItems: 2, items: { type: 'integer', minimum: 1 } },
    },
    // Method-specific options are checked by the library itself (same error format); only plain values pass here.
    additionalProperties: { type: PLAIN, items: { type: ['number', 'string'] } },
  };
}

export function predictOptionsSchema(): Record<string, unknown> {
  return {
    type: 'object',
    properties: { top: { type: 'integer', minimum: 0, maximum: 1000 } },
    additionalProperties: false,
  };
}

/** A JSON body: the image(s) as base64 and the options (instead of the query string). */
export function jsonBodySchema(limits: Limits, options: Record<string, unknown>): Record<string, unknown> {
  const base64 = { type: 'string', minLength: 1, maxLength: Math.ceil((limits.maxBodyBytes * 4) / 3) + 4 };
  return {
    type: 'object',
    properties: { image: base64, images: { type: 'array', minItems: 1, maxItems: limits.maxImages, items: base64 }, options },
    additionalProperties: false,
  };
}

/** One value per parameter (a repeated one is an error, not last-wins), each parsed as the CLI parses flags. */
export function parseQuery(query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw invalidValue(`options.${key}`, `one value (the parameter appears ${value.length} times)`, value.join('&'));
    out[key] = typeof value === 'string' ? parseValue(value) : value;
  }
  return out;
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** The value at a JSON pointer ('/areas/1') in `data`. */
function at(data: unknown, pointer: string): unknown {
  let cur = data;
  for (const part of pointer.split('/').slice(1))
    cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return cur;
}

/**
 * A schema violation as the library's typed error. `root` names what the checked object is ('options'
 * for a query string or an options object, '' for a JSON body whose `options` field holds them).
 */
export function schemaError(errors: readonly SchemaError[], data: unknown, root: string): TorchSaliencyError {
  const e = errors[0];
  let path = e.instancePath;
  if (e.keyword === 'additionalProperties') path += `/${String(e.params.additionalProperty)}`;
  if (e.keyword === 'required') path += `/${String(e.params.missingProperty)}`;
  const parts = path.split('/').slice(1);
  const argument = [root, ...parts]
    .filter((p) => p !== '')
    .join('.')
    .replace(/\.(\d+)(?=\.|$)/g, '[$1]');
  const received = e.keyword === 'additionalProperties' ? String(e.params.additionalProperty) : at(data, path);
  const option = root === 'options' ? parts[0] : parts[0] === 'options' ? parts[1] : undefined;
  const cap = option !== undefined && CAPPED[option] ? ` (this service's limit; the operator sets it with ${LIMIT_FLAGS[CAPPED[option]]})` : '';
  const p = e.params;
  switch (e.keyword) {
    case 'maximum':
    case 'minimum':
      return outOfRange(argument, `a number ${e.keyword === 'maximum' ? '<=' : '>='} ${String(p.limit)}${e.keyword === 'maximum' ? cap : ''}`, received);
    case 'maxItems':
    case 'minItems':
      return outOfRange(
        argument,
        `${e.keyword === 'maxItems' ? 'at most' : 'at least'} ${String(p.limit)} values${e.keyword === 'maxItems' ? cap : ''}`,
        received,
      );
    case 'maxLength':
      return new TorchSaliencyError('ERR_BODY_TOO_LARGE', `Expected at most ${String(p.limit)} characters for ${argument} but received more`, { argument });
    case 'type':
      return new TorchSaliencyError(
        'ERR_INVALID_ARG_TYPE',
        `Expected ${String(p.type).replace(/,/g, ' or ')} for ${argument} but received ${describe(received)}`,
        {
          argument,
        },
      );
    case 'enum':
      return invalidValue(argument, `one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`, received);
    case 'required':
      return new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected a value for ${argument} but received undefined`, { argument });
    case 'pattern':
      return invalidValue(argument, `a string matching /${String(p.pattern)}/`, received);
    case 'minLength':
      return invalidValue(argument, `a non-empty string`, received);
    case 'const':
      return invalidValue(argument, JSON.stringify(p.allowedValue), received);
    case 'additionalProperties':
      return invalidValue(argument, 'a known field', received);
    default:
      return invalidValue(argument, e.message ?? 'a valid value', received);
  }
}

/** Caps no schema can state: the classes a target list asks for ('top-3' asks for 3), the size of resized maps. */
export function checkExplainCaps(options: Record<string, unknown>, limits: Limits): void {
  const specs = Array.isArray(options.target) ? options.target : options.target === undefined ? [] : [options.target];
  let count = 0;
  for (const spec of specs) {
    const m = typeof spec === 'string' ? /^top-(\d+)$/.exec(spec) : null;
    count += m ? Number(m[1]) : 1;
  }
  if (count > limits.maxTargets) {
    throw outOfRange(
      'options.target',
      `at most ${limits.maxTargets} targets per image (this service's limit; the operator sets it with ${LIMIT_FLAGS.maxTargets})`,
      options.target,
    );
  }
  const r = options.resize;
  if (typeof r === 'number' || Array.isArray(r)) {
    const [h, w] = typeof r === 'number' ? [r, r] : (r as number[]);
    if (h * w > limits.maxPixels) {
      throw outOfRange(
        'options.resize',
        `maps of at most ${limits.maxPixels} pixels (this service's limit; the operator sets it with ${LIMIT_FLAGS.maxPixels})`,
        r,
      );
    }
  }
}
