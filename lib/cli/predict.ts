/** `torch-saliency predict`: the top classes of each image, as JSON on stdout. */
import { readImages, withModel, type Command } from './args.js';

export const predict: Command = {
  name: 'predict',
  summary: ['class scores for each image (JSON on stdout)'],
  examples: ['predict --model m.pt --labels labels.txt --size 224 cat.jpg'],
  run: (p) =>
    withModel(p.flags, async (model) => {
      const images = await readImages(p.flags, p.positional);
      const predictions = await model.predict(images, { top: 5 });
      const out = predictions.map((pr, i) => ({ image: p.positional[i], top: pr.top }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    }),
};
