/**
 * Every error torch-saliency throws is a TorchSaliencyError with a stable `code`, and where an argument
 * is to blame, its name in `argument`. Messages follow one format: "Expected <what> for <name> but
 * received <value>".
 */
export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_MODEL_LOAD'
  | 'ERR_MODEL_RUN'
  | 'ERR_MODEL_OUTPUT'
  | 'ERR_NON_FINITE_INPUT'
  | 'ERR_NON_FINITE_RESULT'
  | 'ERR_LABELS_MISMATCH'
  | 'ERR_INPUT_SHAPE'
  | 'ERR_IMAGE_DECODE'
  | 'ERR_LAYER_NOT_FOUND'
  | 'ERR_CUDA_UNAVAILABLE'
  | 'ERR_DISPOSED'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_TORCH'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_NATIVE'
  | 'ABORT_ERR'
  | 'ERR_USAGE'
  | 'ERR_ANNOTATIONS'
  | 'ERR_UNSUPPORTED'
  | (string & {});

export class TorchSaliencyError extends Error {
  readonly code: ErrorCode;
  readonly argument?: string;
  constructor(code: ErrorCode, message: string, options: { argument?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = code === 'ABORT_ERR' ? 'AbortError' : 'TorchSaliencyError';
    this.code = code;
    if (options.argument !== undefined) this.argument = options.argument;
  }
}

/**
 * The codes that mean the caller's input was wrong: bad usage of the command line, a bad argument or option, an image that cannot be
 * decoded or does not fit the model, a layer the model does not have. The CLI exits with 2 and the service
 * answers 400 for these; every other code is a failure while running (exit 1, status 500).
 */
export const CALLER_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_IMAGE_DECODE',
  'ERR_INPUT_SHAPE',
  'ERR_LAYER_NOT_FOUND',
  'ERR_IMAGE_TOO_LARGE',
  'ERR_BODY_TOO_LARGE',
  'ERR_MODEL_NOT_FOUND',
  'ERR_UNSUPPORTED_MEDIA_TYPE',
  'ERR_REQUEST_TIMEOUT',
  'ERR_USAGE',
  'ERR_NON_FINITE_INPUT',
  'ERR_LABELS_MISMATCH',
  'ERR_ANNOTATIONS',
  'ERR_UNSUPPORTED',
]);

/** Whether `code` is one of CALLER_ERROR_CODES. */
export function isCallerErrorCode(code: string | undefined): boolean {
  return code !== undefined && CALLER_ERROR_CODES.has(code);
}

/** Whether `error` is a TorchSaliencyError whose code is the caller's fault (CALLER_ERROR_CODES). */
export function isCallerError(error: unknown): boolean {
  return error instanceof TorchSaliencyError && CALLER_ERROR_CODES.has(error.code);
}

/** A typed array of numbers (any ArrayBuffer view but a DataView). */
export function isTypedArray(value: unknown): value is ArrayBufferView & ArrayLike<number> {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** Short, bounded description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (isTypedArray(value)) return `a ${value.constructor.name} of length ${value.length}`;
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

export function invalidType(argument: string, expected: string, received: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected ${expected} for ${argument} but received ${describe(received)}`, { argument });
}

export function invalidValue(argument: string, expected: string, received: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Expected ${expected} for ${argument} but received ${describe(received)}`, { argument });
}

export function outOfRange(argument: string, expected: string, received: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ERR_OUT_OF_RANGE', `Expected ${expected} for ${argument} but received ${describe(received)}`, { argument });
}

export function abortError(reason?: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ABORT_ERR', 'The operation was aborted', { cause: reason });
}

/**
 * Re-throws a rejection of the native layer as a TorchSaliencyError whose stack points at the caller:
 * `site` is an Error made before the native call.
 */
export function fromNative(error: unknown, site: Error): TorchSaliencyError {
  const e = error as { code?: string; message?: string; argument?: string };
  const out = new TorchSaliencyError(e?.code ?? 'ERR_NATIVE', e?.message ?? String(error), { argument: e?.argument });
  if (site.stack) out.stack = `${out.name} [${out.code}]: ${out.message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return out;
}
