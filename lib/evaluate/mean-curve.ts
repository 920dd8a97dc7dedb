/** The mean of per-map deletion or insertion curves: what evaluate() reports per method and the page draws. */

/** A method's deletion or insertion score: the mean curve over its maps. */
export interface CurveScore {
  /** Mean area under the curve over the pairs (fractions 0..1 on x). */
  auc: number;
  fractions: number[];
  /** Mean probability of the target class at each fraction. */
  probabilities: number[];
  aucPerMap: number[];
}

/**
 * Averages curves sampled at the same fractions: the mean probability at each fraction, the mean of the
 * areas (which, by the trapezoid rule's linearity, is the area under the mean curve), and each map's area.
 */
export function meanCurve(curves: readonly { fractions: ArrayLike<number>; probabilities: ArrayLike<number>; auc: number }[]): CurveScore {
  const n = curves.length;
  const fractions = Array.from(curves[0].fractions);
  const probabilities = fractions.map((_, k) => curves.reduce((s, c) => s + c.probabilities[k], 0) / n);
  const aucPerMap = curves.map((c) => c.auc);
  return { auc: aucPerMap.reduce((a, b) => a + b, 0) / n, fractions, probabilities, aucPerMap };
}
