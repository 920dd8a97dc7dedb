/**
 * Every method by name, and the types `explain` derives from them. A method is a file in this folder
 * exporting its MethodSpec (see types.ts) and one line in SPECS below; its native side registers itself
 * under the same name (native/core/methods/). See docs/adding-a-method.md.
 */
import { invalidType, invalidValue } from '../errors.js';
import type { Explanation } from '../explanation.js';
import { channelPerturbation } from './channel-perturbation.js';
import type { CommonOptions, NormalizedCommon } from './common.js';
import { contrastiveExcitationBackprop } from './contrastive-excitation-backprop.js';
import { deconvnet } from './deconvnet.js';
import { excitationBackprop } from './excitation-backprop.js';
import { extremalPerturbation } from './extremal-perturbation.js';
import { gradCam } from './grad-cam.js';
import { gradient } from './gradient.js';
import { guidedBackprop } from './guided-backprop.js';
import { inputAgnostic } from './input-agnostic.js';
import { linearApprox } from './linear-approx.js';
import { neuralCleanse } from './neural-cleanse.js';
import { rise } from './rise.js';
import type { MethodSpec } from './types.js';

/** Every method's spec: a new method is one line here. */
const SPECS = [
  gradient,
  deconvnet,
  guidedBackprop,
  gradCam,
  linearApprox,
  excitationBackprop,
  contrastiveExcitationBackprop,
  rise,
  channelPerturbation,
  inputAgnostic,
  neuralCleanse,
  extremalPerturbation,
] as const satisfies readonly MethodSpec<string, object, object, object, object>[];

type Methods = { readonly [S in (typeof SPECS)[number] as S['name']]: S };

/** The methods by their `method` string. */
export const METHODS: Methods = Object.freeze(Object.fromEntries(SPECS.map((spec) => [spec.name, spec])) as Methods);

/** The `method` strings explain knows. */
export type MethodName = keyof Methods;

/** What a caller may give the method (besides the common options). */
export type MethodOptions<M extends MethodName> = Methods[M] extends MethodSpec<M, infer Options, object, object, object> ? Options : never;

/** The method's options with defaults filled in, as `result.options` holds them (with the common ones). */
export type NormalizedMethodOptions<M extends MethodName> = Methods[M] extends MethodSpec<M, object, infer Normalized, object, object> ? Normalized : never;

/** What `result.details` holds for the method. */
export type MethodDetails<M extends MethodName> = Methods[M] extends MethodSpec<M, object, object, infer Details, object> ? Details : never;

/** explain's options for one method: its name, its own options and the common ones. */
export type ExplainOptionsFor<M extends MethodName> = { method: M } & MethodOptions<M> & CommonOptions;

/** explain's options for any method: a union keyed by `method`. */
export type ExplainOptions = { [M in MethodName]: ExplainOptionsFor<M> }[MethodName];

/** What explain returns for the method. */
export type ExplanationFor<M extends MethodName> = Explanation<
  MethodDetails<M>,
  Readonly<{ method: M } & Omit<NormalizedCommon, keyof NormalizedMethodOptions<M>> & NormalizedMethodOptions<M>>
>;

/** Any method's spec, as the generic code of model.ts handles it. */
// The outputs are `any` at this one point: each method's finish() declares the named outputs its native side returns.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethodSpec = MethodSpec<MethodName, object, object, object, any>;

export function methodNames(): MethodName[] {
  return (Object.keys(METHODS) as MethodName[]).sort();
}

export function getMethod(name: unknown): AnyMethodSpec {
  const expected = `one of ${methodNames()
    .map((n) => `'${n}'`)
    .join(', ')}`;
  if (typeof name !== 'string') throw invalidType('options.method', expected, name);
  if (!Object.hasOwn(METHODS, name)) throw invalidValue('options.method', expected, name);
  return METHODS[name as MethodName];
}
