/** `torch-saliency predict`: the top classes of each image, as JSON on stdout. */
import { IMAGE_FLAGS, MODEL_FLAGS, readImages, withModel, type Command } from './args.js';

export const predict: Command = {
  name: 'predict',
  summary: ['class scores for each image (JSON on stdout; --top N classes, default 5)'],
  examples: ['predict --model m.pt --labels labels.txt --size 224 cat.jpg'],
  flags: { ...MODEL_FLAGS, ...IMAGE_FLAGS, top: { type: 'integer', min: 1 }, json: { type: 'boolean' } },
  run: (p) =>
    withModel(p.values, async (model) => {
      const images = await readImages(p.values, p.positionals);
      const predictions = await model.predict(images, { top: (p.values.top as number | undefined) ?? 5 });
      const out = predictions.map((pr, i) => ({ image: p.positionals[i], top: pr.top }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    }),
};
