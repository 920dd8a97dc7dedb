/** `torch-saliency layers`: the model's named submodules, one per line (usable as --layer). */
import { withModel, type Command } from './args.js';

export const layers: Command = {
  name: 'layers',
  summary: ["the model's named submodules (usable as --layer)"],
  examples: ['layers --model m.pt'],
  run: (p) =>
    withModel(p.flags, async (model) => {
      process.stdout.write(`${model.layers().join('\n')}\n`);
    }),
};
