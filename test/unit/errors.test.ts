// Which error codes are the caller's fault: one rule (lib/errors.ts) for the CLI's exit code and the service's status.
import { describe, expect, it } from 'vitest';
import { CALLER_ERROR_CODES, TorchSaliencyError, isCallerError } from '../../lib/errors.js';

describe('isCallerError', () => {
  it('holds bad arguments, unreadable annotations, undecodable, oversized or ill-fitting images, unknown layers and models, bad requests, unsupported options', () => {
    expect([...CALLER_ERROR_CODES].sort()).toEqual([
      'ERR_ANNOTATIONS',
      'ERR_BODY_TOO_LARGE',
      'ERR_IMAGE_DECODE',
      'ERR_IMAGE_TOO_LARGE',
      'ERR_INPUT_SHAPE',
      'ERR_INVALID_ARG_TYPE',
      'ERR_INVALID_ARG_VALUE',
      'ERR_LABELS_MISMATCH',
      'ERR_LAYER_NOT_FOUND',
      'ERR_MODEL_NOT_FOUND',
      'ERR_NON_FINITE_INPUT',
      'ERR_OUT_OF_RANGE',
      'ERR_REQUEST_TIMEOUT',
      'ERR_UNSUPPORTED',
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'ERR_USAGE',
    ]);
    for (const code of CALLER_ERROR_CODES) expect(isCallerError(new TorchSaliencyError(code, 'x'))).toBe(true);
  });

  it('leaves out failures while running and anything that is not a TorchSaliencyError', () => {
    for (const code of [
      'ERR_MODEL_LOAD',
      'ERR_MODEL_RUN',
      'ERR_MODEL_OUTPUT',
      'ERR_NON_FINITE_RESULT',
      'ERR_TORCH',
      'ERR_OUT_OF_MEMORY',
      'ERR_NATIVE',
      'ERR_DISPOSED',
      'ABORT_ERR',
    ]) {
      expect(isCallerError(new TorchSaliencyError(code, 'x')), code).toBe(false);
    }
    expect(isCallerError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBe(false);
    expect(isCallerError(undefined)).toBe(false);
  });
});
