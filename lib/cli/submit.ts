/**
 * `torch-saliency submit`: puts images on the queue (one job each) and prints one JSON line per image
 * with its job id; with --wait, each job's answer (and the exit code says whether all succeeded).
 */
import { readFile } from 'node:fs/promises';
import { parseValue } from '../parse.js';
import { createProducer } from '../queue/producer.js';
import { UsageError, exitCode, integer, parse } from './strict-args.js';
import type { Command } from './args.js';

export const SUBMIT_HELP = `torch-saliency submit: put images on the queue for workers (docs/service.md)

Examples:
  torch-saliency submit --redis redis://127.0.0.1:6379 --model classifier --method grad-cam --layer features.5 cat.jpg dog.jpg
  torch-saliency submit --redis redis://127.0.0.1:6379 --model classifier --predict --wait cat.jpg

Options:
  --redis URL          the queue's Redis  [required]
  --model NAME         a model's name in the workers' folder  [required]
  --predict            class scores instead of an explanation (--top N)
  --method NAME        explain method (default grad-cam needs --layer; any --<option> VALUE of the method)
  --wait               wait for each job and print its answer (exit 1 if any failed)
  --timeout-ms N       with --wait: give up (and cancel the job) after N ms
  --queue NAME         queue name (torch-saliency)
`;

const OWN = new Set(['redis', 'model', 'predict', 'wait', 'timeout-ms', 'queue', 'help', 'top']);

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    // Method options are open-ended (--max-iter 300, --layer features.5): every --flag VALUE not ours is one.
    const own: string[] = [];
    const options: Record<string, unknown> = {};
    const files: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
      if (!m) files.push(arg);
      else if (OWN.has(m[1]) || arg === '-h') {
        own.push(arg);
        if (m[2] === undefined && !['predict', 'wait', 'help'].includes(m[1]) && i + 1 < argv.length) own.push(argv[++i]);
      } else {
        const value = m[2] ?? argv[++i];
        if (value === undefined) throw new UsageError(`Expected a value after ${arg}`);
        options[m[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = parseValue(value);
      }
    }
    const { values } = parse(own, {
      redis: { type: 'string' },
      model: { type: 'string' },
      predict: { type: 'boolean' },
      wait: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      queue: { type: 'string' },
      top: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      process.stdout.write(SUBMIT_HELP);
      return 0;
    }
    if (typeof values.redis !== 'string' || typeof values.model !== 'string') throw new UsageError('Expected --redis URL and --model NAME (see --help)');
    if (files.length === 0) throw new UsageError('Expected one or more image files (see --help)');
    const producer = createProducer({ redis: values.redis, queue: values.queue as string | undefined });
    let failed = 0;
    try {
      const ids: { file: string; job: string }[] = [];
      for (const file of files) {
        const bytes = await readFile(file);
        const job = values.predict
          ? await producer.enqueuePredict(values.model, bytes, { top: integer(values, 'top') ?? 5 })
          : await producer.enqueueExplain(values.model, bytes, { method: 'grad-cam', ...options } as { method: string });
        ids.push({ file, job });
        if (!values.wait) process.stdout.write(`${JSON.stringify({ file, job })}\n`);
      }
      if (values.wait) {
        for (const { file, job } of ids) {
          try {
            const result = await producer.result(job, { timeoutMs: integer(values, 'timeout-ms') });
            process.stdout.write(`${JSON.stringify({ file, job, result })}\n`);
          } catch (e) {
            failed++;
            const err = e as { code?: string; message?: string; argument?: string };
            process.stdout.write(`${JSON.stringify({ file, job, error: { code: err.code, message: err.message, argument: err.argument } })}\n`);
          }
        }
      }
    } finally {
      await producer.close();
    }
    return failed > 0 ? 1 : 0;
  });
}

export const submit: Command = {
  name: 'submit',
  summary: ['put images on that queue, optionally wait for the answers (submit --help)'],
  examples: ['submit --redis redis://127.0.0.1:6379 --model m --method grad-cam --layer features.5 cat.jpg'],
  main: run,
};
