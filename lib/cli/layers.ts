/** `torch-saliency layers`: the model's named submodules, one per line (usable as --layer). */
import { MODEL_FLAGS, withModel, type Command } from './args.js';

export const layers: Command = {
  name: 'layers',
  summary: ["the model's named submodules (usable as --layer)"],
  examples: ['layers --model m.pt'],
  flags: MODEL_FLAGS,
  parse: { positionals: false },
  run: (p) =>
    withModel(p.values, async (model) => {
      process.stdout.write(`${model.layers().join('\n')}\n`);
    }),
};
