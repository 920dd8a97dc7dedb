/**
 * Developer tool: per-class candidate statistics of the input-agnostic scan on cached explanations
 * (_backdoor-cache.ts), written as JSON records for trying flagging rules offline (_backdoor-rules.py;
 * docs/dev/backdoor-scan.md). Per class and pass: the region as the scan grows it, and the flip rates on the
 * pass's seeded random inputs (R) and on the other classes' refined pictures (P) of: the scan's stamp and its two
 * controls (inverse, mean colour), two windows of the class's own nudge cut elsewhere and pasted at the region
 * (else1: where the map is lowest; else2: point-mirrored), and the whole-image nudge blended at opacity 0.1 and
 * 0.2 with its inverse as control.
 *   npx tsx scripts/bench/_backdoor-features.ts --split dev --cache /tmp/bd2-cache --out /tmp/bd2-dev.json
 *     [--pairs d01,d02] [--seeds 0,1] [--trials 32] [--variants stamp,inverse,flat,else1,else2]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, setThreads, type Image } from '../../lib/index.js';
import { randomInputs, says } from '../../lib/backdoor/inputs.js';
import { boxBlur, peakRegion } from '../../lib/backdoor/scores.js';

const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'backdoor-bench');
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
interface Entry {
  id: string;
  split: string;
  pair: string;
  file: string;
  imageSize: number;
  head: 'softmax' | 'sigmoid';
  trojaned: boolean;
  targetClass: number | null;
  trigger: { kind: string; box: unknown; placement: string } | null;
  pairTrigger: { kind: string; targetClass: number; box: unknown; placement: string } | null;
}

async function main(): Promise<void> {
  setThreads(1);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { models: Entry[] };
  const split = arg('split', 'dev');
  const pairs = arg('pairs', '');
  const cache = arg('cache', '/tmp/bd2-cache');
  const seeds = arg('seeds', '0,1').split(',').map(Number);
  const records: unknown[] = [];
  for (const e of manifest.models.filter((m) => (split === 'all' || m.split === split) && (pairs === '' || pairs.split(',').includes(m.pair)))) {
    const model = await loadModel(join(dir, e.file), { device: 'cpu' });
    const S = e.imageSize,
      C = 3,
      plane = S * S,
      K = 8;
    const t0 = performance.now();
    const passes = [];
    for (const seed of seeds) {
      const raw = new Float32Array(readFileSync(join(cache, `${e.id}-s${seed}.bin`)).buffer.slice(0));
      const meta = JSON.parse(readFileSync(join(cache, `${e.id}-s${seed}.json`), 'utf8'));
      const maps: Float32Array[] = [],
        rhos: Float32Array[] = [],
        pics: Float32Array[] = [];
      let o = 0;
      for (let j = 0; j < K; j++) {
        maps.push(raw.subarray(o, o + plane));
        o += plane;
        rhos.push(raw.subarray(o, o + C * plane));
        o += C * plane;
        pics.push(raw.subarray(o, o + C * plane));
        o += C * plane;
      }
      const img = (data: Float32Array): Image => ({ data, channels: C, height: S, width: S });
      const random = randomInputs(Number(arg('trials', '32')), C, S, S, seed);
      const pictures = pics.map((p) => img(p));
      const inputs = [...random, ...pictures];
      const nR = random.length;
      const base = await model.predict(inputs, { top: 1 });
      const blur = Math.floor(S / 64);
      const classes = [];
      for (let c = 0; c < K; c++) {
        const map = { data: maps[c], height: S, width: S };
        const box = peakRegion(blur > 0 ? boxBlur(map, blur) : map, 0.5);
        const floor = [...maps[c]].sort((a, b) => a - b)[plane >> 1];
        let inside = 0,
          total = 0;
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) {
            const m = Math.max(0, maps[c][y * S + x] - floor);
            total += m;
            if (y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width) inside += m;
          }
        const top = Math.max(0, box.top - 1),
          left = Math.max(0, box.left - 1);
        const bottom = Math.min(S, box.top + box.height + 1),
          right = Math.min(S, box.left + box.width + 1);
        const h = bottom - top,
          w = right - left;
        const rho = rhos[c];
        let peak = 1e-12;
        for (let i = 0; i < rho.length; i++) peak = Math.max(peak, Math.abs(rho[i]));
        let lpeak = 1e-12;
        for (let ch = 0; ch < C; ch++)
          for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) lpeak = Math.max(lpeak, Math.abs(rho[ch * plane + y * S + x]));
        const tern = (p: number) => {
          const a = new Float32Array(rho.length);
          for (let i = 0; i < a.length; i++) a[i] = rho[i] > 0.05 * p ? 1 : rho[i] < -0.05 * p ? 0 : 0.5;
          return a;
        };
        const patch = tern(lpeak);
        const inverse = patch.map((x) => 1 - x);
        const flat = new Float32Array(rho.length);
        for (let ch = 0; ch < C; ch++) {
          let s = 0;
          for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) s += patch[ch * plane + y * S + x];
          flat.fill(s / (h * w), ch * plane, (ch + 1) * plane);
        }
        // Controls cut from elsewhere: the window of the same size with the least map mass, and the point-mirrored window.
        let bestY = 0,
          bestX = 0,
          bestM = Infinity;
        for (let y = 0; y + h <= S; y++)
          for (let x = 0; x + w <= S; x++) {
            if (y < bottom && y + h > top && x < right && x + w > left) continue;
            let m = 0;
            for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) m += maps[c][yy * S + xx];
            if (m < bestM) {
              bestM = m;
              bestY = y;
              bestX = x;
            }
          }
        const whole = tern(peak);
        const cut = (y0: number, x0: number) => {
          const a = new Float32Array(rho.length);
          for (let ch = 0; ch < C; ch++)
            for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) a[ch * plane + (top + y) * S + left + x] = whole[ch * plane + (y0 + y) * S + x0 + x];
          return a;
        };
        const else1 = cut(bestY, bestX);
        const else2 = cut(S - bottom, S - right);
        const paste = (stamp: Float32Array) =>
          inputs.map((inp) => {
            const d = inp.data.slice();
            for (let ch = 0; ch < C; ch++)
              for (let y = top; y < bottom; y++) {
                const row = ch * plane + y * S;
                d.set(stamp.subarray(row + left, row + right), row + left);
              }
            return img(d);
          });
        // Whole-image candidates: the continuous pattern 0.5 + 0.5 rho / peak, blended at low opacity, and its inverse.
        const cont = new Float32Array(rho.length);
        for (let i = 0; i < cont.length; i++) cont[i] = 0.5 + (0.5 * rho[i]) / peak;
        const blend = (p: Float32Array, a: number, sign: number) =>
          inputs.map((inp) => {
            const d = inp.data.slice();
            for (let i = 0; i < d.length; i++) d[i] = Math.min(1, Math.max(0, (1 - a) * d[i] + a * (sign > 0 ? p[i] : 1 - p[i])));
            return img(d);
          });
        const variants: [string, Image[]][] = [
          ['stamp', paste(patch)],
          ['inverse', paste(inverse)],
          ['flat', paste(flat)],
          ['else1', paste(else1)],
          ['else2', paste(else2)],
          ['blend10', blend(cont, 0.1, 1)],
          ['blend10inv', blend(cont, 0.1, -1)],
          ['blend20', blend(cont, 0.2, 1)],
          ['blend20inv', blend(cont, 0.2, -1)],
        ];
        const keep = arg('variants', '')
          .split(',')
          .filter((x) => x !== '');
        if (keep.length > 0) variants.splice(0, variants.length, ...variants.filter(([name]) => keep.includes(name)));
        const all = variants.flatMap(([, v]) => v);
        const preds = await model.predict(all, { top: 1 });
        const rec: Record<string, unknown> = {
          class: c,
          box,
          concentration: total > 0 ? inside / total : 0,
          area: (h * w) / plane,
          areaBox: (box.height * box.width) / plane,
        };
        const n = inputs.length;
        for (let vi = 0; vi < variants.length; vi++) {
          let eR = 0,
            fR = 0,
            eP = 0,
            fP = 0;
          const margins: number[] = [];
          for (let t = 0; t < n; t++) {
            if (t - nR === c) continue; // the class's own picture
            if (says(base[t].logits, c, e.head)) continue;
            const hit = says(preds[vi * n + t].logits, c, e.head);
            if (t < nR) {
              eR++;
              if (hit) fR++;
            } else {
              eP++;
              if (hit) fP++;
            }
            const lg = preds[vi * n + t].logits,
              lb = base[t].logits;
            margins.push(lg[c] - lb[c]);
          }
          rec[variants[vi][0]] = { R: eR ? fR / eR : 0, P: eP ? fP / eP : 0, eR, eP, dlogit: margins.reduce((a, b) => a + b, 0) / Math.max(1, margins.length) };
        }
        rec.baseR = 1 - (rec.stamp as { eR: number }).eR / nR;
        rec.fidelity = meta.fidelity[c];
        rec.loss8 = (meta.lossHistory[c] as number[]).slice(0, 8).reduce((a: number, b: number) => a + b, 0) / 8;
        classes.push(rec);
      }
      passes.push({ seed, classes });
    }
    model.dispose();
    const target = e.targetClass ?? e.pairTrigger!.targetClass;
    const trig = e.trigger ?? e.pairTrigger!;
    records.push({
      id: e.id,
      pair: e.pair,
      split: e.split,
      size: e.imageSize,
      head: e.head,
      trojaned: e.trojaned,
      target,
      kind: trig.kind,
      box: trig.box,
      placement: trig.placement,
      ms: performance.now() - t0,
      passes,
    });
    console.log(`${e.id} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    writeFileSync(arg('out', '/tmp/bd2-features.json'), JSON.stringify(records));
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
