#!/usr/bin/env node
/**
 * The torch-saliency command line: data (JSON) on stdout, progress and logs on stderr, a progress bar
 * only on a TTY. Exit codes: 0 success, 1 failure while running, 2 bad usage or bad arguments (the
 * caller's errors of lib/errors.ts).
 */
import { UsageError, parseFlags, reportError, type Command } from './args.js';
import { COMMANDS } from './commands.js';

export { parseFlags };

function help(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 4;
  const list = commands.flatMap((c) => c.summary.map((line, i) => `  ${(i === 0 ? c.name : '').padEnd(width)}${line}`));
  return `torch-saliency: saliency maps for TorchScript image classifiers

Examples:
${commands.flatMap((c) => c.examples.map((e) => `  torch-saliency ${e}`)).join('\n')}

Commands:
${list.join('\n')}

Common options:
  --model PATH         TorchScript model (torch.jit.trace or torch.jit.script, then .save())  [required]
  --labels PATH        class names, one per line
  --device D           cpu | cuda | cuda:N | auto (default auto)
  --threads N          libtorch intra-op threads (default: cores available)
  --score-maps M       refuse | mean: a model that outputs N x K x H x W score maps is refused (default)
                       or its maps are averaged over space into class scores
  --size N | HxW       resize images to this size (default: their own size; required if they differ)
  --fit F              cover | contain | fill (default cover)
  --mean a,b,c --std a,b,c   normalisation for models exported without it
  --json               print the JSON summary on stdout (explain) instead of a table
  -h, --help           this help
${commands
  .filter((c) => c.help)
  .map((c) => `\n${c.help}`)
  .join('')}
Environment: NO_COLOR disables colour. Exit codes: 0 ok, 1 failed while running, 2 bad usage.
`;
}

export async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help(COMMANDS));
    return name === undefined ? 2 : 0;
  }
  try {
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      const names = COMMANDS.map((c) => c.name);
      throw new UsageError(`Unknown command '${name}' (expected ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}; see --help)`);
    }
    if (command.main) return await command.main(argv.slice(1));
    const args = parseFlags(argv.slice(1), command.flags ?? {}, command.parse);
    if (args.values.help) {
      process.stdout.write(help(COMMANDS));
      return 0;
    }
    return (await command.run!(args)) ?? 0;
  } catch (e) {
    return reportError(e);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
