/** `torch-saliency methods`: the methods explain knows, one per line. */
import { methods as methodNames } from '../index.js';
import type { Command } from './args.js';

export const methods: Command = {
  name: 'methods',
  summary: ['the methods explain knows'],
  examples: ['methods'],
  flags: { help: { type: 'boolean', short: 'h' } },
  parse: { positionals: false },
  run: async () => {
    process.stdout.write(`${methodNames().join('\n')}\n`);
  },
};
