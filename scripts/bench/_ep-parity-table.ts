/**
 * The parity table of extremal perturbation's speed options, from the summary that scripts/ep-parity.ts
 * writes (docs/dev/ep-parity.json): per variant and area, the IoU of its masks against the plain loop's
 * (min, mean, how many at or above 0.95), printed by `ep-parity --print` and by the ep-real bench.
 */
export interface ParitySummary {
  model: string;
  size: number;
  /** libtorch of the reference (plain) masks */
  reference: string;
  /** intra-op threads each call asked for */
  threads: number;
  areas: number[];
  pairs: { photo: string; target: number; label: string }[];
  rows: {
    name: string;
    torch: string;
    photos: string[];
    /** per photo, per area */
    iou: number[][];
    steps: number[][];
    seconds: number[];
    plainSeconds: number[];
    /** per photo, per area: the first step whose reward is 1% away from the plain run's (null: never) */
    partStep: (number | null)[][];
  }[];
}

export function printParity(s: ParitySummary): void {
  const n = s.pairs.length;
  console.log(
    `extremal perturbation parity: ${s.model}, ${s.size} px, ${n} photo(s) with their top-1 class, areas ${s.areas.join(', ')} in one call per photo, ` +
      `${s.threads} intra-op thread per call; IoU (regions above half of each mask's maximum) against the plain loop ` +
      `(float32, contiguous, unfrozen, 800 steps) on libtorch ${s.reference}: min / mean / masks >= 0.95 of those run`,
  );
  const head = s.areas.map((a) => `area ${a}`.padEnd(19)).join('');
  console.log(`  ${'variant'.padEnd(52)}${'photos'.padStart(6)}  ${head}steps      seconds vs plain`);
  const mean = (xs: number[]) => xs.reduce((t, x) => t + x, 0) / xs.length;
  for (const r of s.rows) {
    const cells = s.areas
      .map((_, k) => {
        const col = r.iou.map((x) => x[k]);
        return `${Math.min(...col).toFixed(2)} / ${mean(col).toFixed(2)} / ${col.filter((x) => x >= 0.95).length}`.padEnd(19);
      })
      .join('');
    const steps = r.steps.flat();
    const ratio = r.seconds.reduce((t, x) => t + x, 0) / r.plainSeconds.reduce((t, x) => t + x, 0);
    const name = r.torch === s.reference ? r.name : `${r.name} [libtorch ${r.torch}]`;
    console.log(
      `  ${name.padEnd(52)}${String(r.photos.length).padStart(6)}  ${cells}${`${Math.min(...steps)}-${Math.max(...steps)}`.padEnd(11)}${ratio.toFixed(2)}`,
    );
  }
  console.log(
    '  (seconds: wall time of each call against the plain call on the same photo, on a shared machine whose load moved between calls: ' +
      'a rough figure; the per-step ratios are measured by the ep-real bench)',
  );
}

/** The same table in Markdown, for the method's doc page (`ep-parity --print --markdown`). */
export function parityMarkdown(s: ParitySummary): string {
  const mean = (xs: number[]) => xs.reduce((t, x) => t + x, 0) / xs.length;
  const lines = [
    `| variant, libtorch ${s.reference} unless said | photos | ${s.areas.map((a) => `area ${a}`).join(' | ')} | steps |`,
    `|---|---|${s.areas.map(() => '---|').join('')}---|`,
  ];
  for (const r of s.rows) {
    const cells = s.areas.map((_, k) => {
      const col = r.iou.map((x) => x[k]);
      return `${Math.min(...col).toFixed(2)} / ${mean(col).toFixed(2)} / ${col.filter((x) => x >= 0.95).length} of ${col.length}`;
    });
    const steps = r.steps.flat();
    const lo = Math.min(...steps),
      hi = Math.max(...steps);
    const name = r.torch === s.reference ? r.name : `${r.name}, libtorch ${r.torch}`;
    lines.push(`| ${name} | ${r.photos.length} | ${cells.join(' | ')} | ${lo === hi ? lo : `${lo}-${hi}`} |`);
  }
  return lines.join('\n');
}
