/** `torch-saliency explain`: saliency maps for each image, written as pictures and a summary.json. */
import { basename, extname, join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import type { ExplainOptions, PictureKind } from '../index.js';
import { imagePNG, writePicture } from '../pictures.js';
import { parseValue } from '../parse.js';
import { SHARED_FLAGS, camel, log, progressBar, readImages, withModel, type Command } from './args.js';

/** The flags explain reads itself; every other flag is an option of the method. */
const OWN_FLAGS = new Set([...SHARED_FLAGS, 'out', 'method', 'target', 'pictures']);

function targetFlag(text: string | boolean | undefined): unknown {
  if (text === undefined) return undefined;
  const parts = String(text)
    .split(',')
    .map((s) => (Number.isInteger(Number(s)) && s.trim() !== '' ? Number(s) : s.trim()));
  return parts.length === 1 ? parts[0] : parts;
}

function stem(file: string): string {
  return basename(file, extname(file));
}

export const explain: Command = {
  name: 'explain',
  summary: ['saliency maps for each image: pictures and summary.json in --out (default ./saliency-out)'],
  examples: [
    'explain --model classifier.pt --labels labels.txt --out out/ cat.jpg dog.jpg',
    'explain --model m.pt --method extremal-perturbation --areas 0.05,0.1,0.2 --size 224 cat.jpg',
    'explain --model m.pt --method grad-cam --layer features.5 --target top-3 --json cat.jpg',
  ],
  help: `explain options:
  --method NAME        default extremal-perturbation (see "torch-saliency methods")
  --target T           class index, label, top-1 (default) or top-k; a comma list gives several
  --out DIR            where pictures and summary.json go
  --pictures LIST      which pictures: mask,overlay,heatmap,preserved (default: all that apply)
  --<option> VALUE     any option of the method in kebab case, e.g. --areas 0.05,0.1 --max-iter 300
                       --perturbation fade --variant delete --layer features.5 --num-masks 4000 --seed 1
  Numbers and comma lists of numbers are parsed; true/false are booleans.
`,
  run: (p) =>
    withModel(p.flags, async (model) => {
      const images = await readImages(p.flags, p.positional);
      const method = (p.flags.get('method') as string | undefined) ?? 'extremal-perturbation';
      const options: { method: string; [option: string]: unknown } = { method };
      for (const [k, v] of p.flags) if (!OWN_FLAGS.has(k)) options[camel(k)] = parseValue(v);
      const target = targetFlag(p.flags.get('target'));
      // One target spec for every image: a list means several targets per image.
      if (target !== undefined) options.target = images.length > 1 && Array.isArray(target) ? images.map(() => target) : target;
      options.onProgress = progressBar(method);
      const out = (p.flags.get('out') as string | undefined) ?? 'saliency-out';
      log(`torch-saliency: ${method} on ${images.length} image(s), device ${model.device}`);
      // Text from the command line: explain() checks every option and names the one that is wrong.
      const result = await model.explain(images, options as ExplainOptions);
      await mkdir(out, { recursive: true });
      const wanted = typeof p.flags.get('pictures') === 'string' ? String(p.flags.get('pictures')).split(',') : ['mask', 'overlay', 'heatmap', 'preserved'];
      const written: string[] = [];
      for (let i = 0; i < images.length; i++) {
        written.push(await writePicture(join(out, `${stem(p.positional[i])}.png`), imagePNG(images[i])));
      }
      for (const map of result.maps) {
        const name = [stem(p.positional[map.image]), map.label ?? `class${map.target}`, map.area !== undefined ? `area${map.area}` : undefined]
          .filter(Boolean)
          .join('-')
          .replace(/[^\w.-]+/g, '_');
        const isMask = map.area !== undefined;
        for (const kind of wanted) {
          if (kind === 'preserved' && !isMask) continue;
          const file = join(out, `${name}-${kind}.png`);
          const bytes = map.png(kind as PictureKind, images[map.image]);
          written.push(await writePicture(file, bytes));
        }
      }
      const summary = { model: p.flags.get('model'), images: p.positional, ...result.toJSON(), pictures: written };
      await writeFile(join(out, 'summary.json'), JSON.stringify(summary, null, 2));
      if (p.flags.get('json')) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        for (const map of result.maps) {
          const s = map.stats();
          const area = map.area !== undefined ? ` area ${map.area}` : '';
          process.stdout.write(`${p.positional[map.image]}\t${map.label ?? map.target}${area}\tmean ${s.mean.toFixed(3)} max ${s.max.toFixed(3)}\n`);
        }
        process.stdout.write(`wrote ${written.length} pictures and ${join(out, 'summary.json')} in ${(result.timings.totalMs / 1000).toFixed(1)} s\n`);
      }
    }),
};
