/**
 * The trojan benchmark's figures, from per-model scan outcomes (no model needed: unit-tested by hand in
 * test/unit/backdoor-metrics.test.ts): detection rate, false-positive rate on clean twins, the area under the
 * ROC curve of a model-level score, how often the flagged class is the target, and how well the reported
 * region covers the trigger (IoU, and whether the region's centre lies inside: the pointing test).
 */

/** A box as the scan reports it. */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** What one scan of one benchmark model gave. */
export interface Outcome {
  id: string;
  split: string;
  /** The trigger's kind (the family rows are grouped by). */
  family: string;
  trojaned: boolean;
  /** The trojan's target (its twin's too: the clean model's pairTrigger target). */
  target: number;
  /** The trigger's box on the image when it has a fixed one (null: random place per image, or whole image). */
  trigger: Box | null;
  /** Classes the scan flagged, most suspicious first. */
  flagged: number[];
  /** The model-level score (higher: more suspicious), for the ROC curve. */
  score: number;
  /** The region the scan reports for each flagged class, in the order of `flagged`. */
  regions: Box[];
  ms: number;
}

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Box, b: Box): number {
  const h = Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));
  const w = Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left));
  const inter = h * w;
  const union = a.height * a.width + b.height * b.width - inter;
  return union > 0 ? inter / union : 0;
}

/** Whether the centre of `region` lies inside `trigger` (edges included). */
export function pointsInside(region: Box, trigger: Box): boolean {
  const cy = region.top + region.height / 2;
  const cx = region.left + region.width / 2;
  return cy >= trigger.top && cy <= trigger.top + trigger.height && cx >= trigger.left && cx <= trigger.left + trigger.width;
}

/** A manifest's trigger box [x0, y0, x1, y1] (x1, y1 exclusive) as a Box; null for 'random' and whole-image triggers. */
export function manifestBox(box: [number, number, number, number] | 'random', placement: string): Box | null {
  if (box === 'random' || placement === 'whole') return null;
  const [x0, y0, x1, y1] = box;
  return { top: y0, left: x0, height: y1 - y0, width: x1 - x0 };
}

/**
 * Area under the ROC curve of scores of positives against negatives: the probability that a random positive
 * scores above a random negative, ties counting one half (Mann-Whitney). NaN when either side is empty.
 */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number {
  if (positives.length === 0 || negatives.length === 0) return NaN;
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

export interface Summary {
  trojans: number;
  cleans: number;
  /** Trojans with any class flagged / trojans. */
  detectionRate: number;
  /** Clean twins with any class flagged / clean twins. */
  falsePositiveRate: number;
  /** Of the detected trojans, the share whose first flagged class is the target. */
  targetAccuracy: number;
  /** Of the detected trojans with the target flagged first and a fixed trigger box: how many there are. */
  localised: number;
  /** Mean IoU of the target's region with the trigger over those. */
  meanIou: number;
  /** Share of those whose region's centre lies inside the trigger. */
  pointing: number;
  auc: number;
  meanMs: number;
}

export function summarise(outcomes: readonly Outcome[]): Summary {
  const trojans = outcomes.filter((o) => o.trojaned);
  const cleans = outcomes.filter((o) => !o.trojaned);
  const detected = trojans.filter((o) => o.flagged.length > 0);
  const onTarget = detected.filter((o) => o.flagged[0] === o.target);
  const boxed = onTarget.filter((o) => o.trigger !== null);
  const ratio = (n: number, d: number) => (d > 0 ? n / d : NaN);
  return {
    trojans: trojans.length,
    cleans: cleans.length,
    detectionRate: ratio(detected.length, trojans.length),
    falsePositiveRate: ratio(cleans.filter((o) => o.flagged.length > 0).length, cleans.length),
    targetAccuracy: ratio(onTarget.length, detected.length),
    localised: boxed.length,
    meanIou: ratio(
      boxed.reduce((s, o) => s + iou(o.regions[0], o.trigger!), 0),
      boxed.length,
    ),
    pointing: ratio(boxed.filter((o) => pointsInside(o.regions[0], o.trigger!)).length, boxed.length),
    auc: rocAuc(
      trojans.map((o) => o.score),
      cleans.map((o) => o.score),
    ),
    meanMs: ratio(
      outcomes.reduce((s, o) => s + o.ms, 0),
      outcomes.length,
    ),
  };
}

/** Summaries grouped by a key (split, family), keys in first-seen order. */
export function summariseBy(outcomes: readonly Outcome[], key: (o: Outcome) => string): Map<string, Summary> {
  const groups = new Map<string, Outcome[]>();
  for (const o of outcomes) {
    const k = key(o);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(o);
  }
  return new Map([...groups].map(([k, os]) => [k, summarise(os)]));
}

/** One table row of a summary: fractions as "n/d" where they are counts, NaN as '-'. */
export function formatSummary(name: string, s: Summary): string {
  const f = (x: number, digits = 2) => (Number.isNaN(x) ? '-' : x.toFixed(digits));
  return [
    name.padEnd(14),
    `det ${f(s.detectionRate)} (${Math.round(s.detectionRate * s.trojans) || 0}/${s.trojans})`.padEnd(18),
    `fp ${f(s.falsePositiveRate)} (${Math.round(s.falsePositiveRate * s.cleans) || 0}/${s.cleans})`.padEnd(17),
    `auc ${f(s.auc)}`.padEnd(9),
    `target ${f(s.targetAccuracy)}`.padEnd(12),
    `iou ${f(s.meanIou)}`.padEnd(9),
    `pointing ${f(s.pointing)} (n=${s.localised})`.padEnd(20),
    `${f(s.meanMs / 1000, 1)} s/scan`,
  ].join(' ');
}
