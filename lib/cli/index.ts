#!/usr/bin/env node
/**
 * The torch-saliency command line: data (JSON) on stdout, progress and logs on stderr, a progress bar
 * only on a TTY. Exit codes: 0 success, 1 failure while running, 2 bad usage or bad arguments (the
 * caller's errors of lib/errors.ts).
 */
import { TorchSaliencyError, isCallerError } from '../errors.js';
import { UsageError, log, parseArgs, type Command } from './args.js';
import { COMMANDS } from './commands.js';

export { parseArgs };

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
  const own = COMMANDS.find((c) => c.name === argv[0] && c.main);
  if (own) return own.main!(argv.slice(1));
  const p = parseArgs(argv);
  if (p.flags.get('help') || p.flags.get('h') || !p.command || p.command === 'help') {
    process.stdout.write(help(COMMANDS));
    return p.command || p.flags.size ? 0 : 2;
  }
  try {
    const command = COMMANDS.find((c) => c.name === p.command);
    if (!command) {
      const names = COMMANDS.map((c) => c.name);
      throw new UsageError(`Unknown command '${p.command}' (expected ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}; see --help)`);
    }
    await command.run!(p);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      log(`torch-saliency: ${e.message}`);
      return 2;
    }
    if (e instanceof TorchSaliencyError) {
      log(`torch-saliency: ${e.message} [${e.code}]`);
      return isCallerError(e) ? 2 : 1;
    }
    log(`torch-saliency: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
