// explain is typed by `method`: its options, result.options and result.details. These checks run in
// `npm run typecheck` (expectTypeOf is checked by the compiler); at run time they only list the methods.
import { describe, expectTypeOf, it } from 'vitest';
import type {
  ExplainOptions,
  ExplainOptionsFor,
  ExplanationFor,
  ExtremalPerturbationDetails,
  InputAgnosticDetails,
  MethodName,
  Model,
} from '../../lib/index.js';
import { methods } from '../../lib/index.js';

describe('explain types', () => {
  it('name every method', () => {
    expectTypeOf(methods()).toEqualTypeOf<MethodName[]>();
    expectTypeOf<'grad-cam'>().toMatchTypeOf<MethodName>();
    expectTypeOf<'nope'>().not.toMatchTypeOf<MethodName>();
  });

  it("type the options by method, rejecting another method's options", () => {
    expectTypeOf({ method: 'rise', numMasks: 100 } as const).toMatchTypeOf<ExplainOptionsFor<'rise'>>();
    // @ts-expect-error layer is no option of rise
    const wrong: ExplainOptionsFor<'rise'> = { method: 'rise', layer: 'features.4' };
    expectTypeOf(wrong).toMatchTypeOf<ExplainOptions>();
    expectTypeOf({ method: 'grad-cam' } as const).not.toMatchTypeOf<ExplainOptionsFor<'grad-cam'>>(); // layer is required
    expectTypeOf<ExplainOptionsFor<'gradient'>>().toMatchTypeOf<ExplainOptions>();
  });

  it("type the result's details and options by method", () => {
    expectTypeOf<ExplanationFor<'extremal-perturbation'>['details']>().toEqualTypeOf<Readonly<ExtremalPerturbationDetails>>();
    expectTypeOf<ExplanationFor<'input-agnostic'>['details']>().toEqualTypeOf<Readonly<InputAgnosticDetails>>();
    expectTypeOf<ExplanationFor<'extremal-perturbation'>['options']['batchSize']>().toEqualTypeOf<number>();
    expectTypeOf<ExplanationFor<'grad-cam'>['options']['layer']>().toEqualTypeOf<string | null>();
    type Explain = Model['explain'];
    expectTypeOf<ReturnType<Explain>>().toMatchTypeOf<Promise<unknown>>();
  });
});
