/**
 * Which errors are the caller's fault, and the HTTP status of each code: one rule for the service, the
 * queue worker (a caller's fault fails the job without retries) and the command line (exit code 2).
 */
import { TorchSaliencyError, isCallerErrorCode } from '../errors.js';

/** The caller's fault: lib/errors.ts's CALLER_ERROR_CODES, the one rule for the CLI, the service and the queue. */
export const isCallerFault = isCallerErrorCode;

/** Codes whose status is not 400 (caller faults) or 500 (everything else). */
const STATUS: Readonly<Record<string, number>> = {
  ERR_BODY_TOO_LARGE: 413,
  ERR_IMAGE_TOO_LARGE: 413,
  ERR_MODEL_NOT_FOUND: 404,
  ERR_NOT_FOUND: 404,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_QUEUE_FULL: 429,
  ERR_DEADLINE: 504,
  ERR_SHUTTING_DOWN: 503,
  ERR_NOT_READY: 503,
  ERR_REDIS_UNAVAILABLE: 503,
  ABORT_ERR: 499,
};

export function httpStatus(code: string | undefined): number {
  if (code !== undefined && STATUS[code] !== undefined) return STATUS[code];
  return isCallerFault(code) ? 400 : 500;
}

/** The JSON body of every error answer: `{ error: { code, message, argument } }`. */
export function errorBody(e: unknown): { error: { code: string; message: string; argument?: string } } {
  const err = e as { code?: unknown; message?: unknown; argument?: unknown };
  const code = typeof err?.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(err.code) ? err.code : 'ERR_INTERNAL';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return { error: { code, message, ...(typeof err?.argument === 'string' ? { argument: err.argument } : {}) } };
}

export function queueFull(queued: number, retryAfterSeconds: number): TorchSaliencyError & { retryAfter: number } {
  const e = new TorchSaliencyError(
    'ERR_QUEUE_FULL',
    `The queue is full (${queued} images waiting); retry after ${retryAfterSeconds} s`,
  ) as TorchSaliencyError & { retryAfter: number };
  e.retryAfter = retryAfterSeconds;
  return e;
}

export function deadlineExceeded(ms: number): TorchSaliencyError {
  return new TorchSaliencyError('ERR_DEADLINE', `The request did not finish within its deadline of ${ms} ms; its work was cancelled`);
}

export function shuttingDown(): TorchSaliencyError {
  return new TorchSaliencyError('ERR_SHUTTING_DOWN', 'The service is shutting down; its work was cancelled');
}

export function modelNotFound(name: string, known: readonly string[]): TorchSaliencyError {
  const list = known.length ? known.map((n) => `'${n}'`).join(', ') : 'none';
  return new TorchSaliencyError('ERR_MODEL_NOT_FOUND', `Expected one of the served models (${list}) for model but received ${JSON.stringify(name)}`, {
    argument: 'model',
  });
}
