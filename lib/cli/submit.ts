/**
 * `torch-saliency submit`: puts images on the queue (one job each) and prints one JSON line per image
 * with its job id; with --wait, each job's answer (and the exit code says whether all succeeded).
 */
import { readFile, stat } from 'node:fs/promises';
import { TorchSaliencyError } from '../errors.js';
import { createProducer } from '../queue/producer.js';
import { checkRedis } from '../queue/redis.js';
import { UsageError, exitCode, parseFlags, type Command, type FlagSpecs } from './args.js';
import { isMethodFlag, methodList, methodOptions, targetFlag } from './method-options.js';

/** How long submit waits for Redis to answer before it gives up (exit 1). */
const REDIS_TIMEOUT_MS = 10_000;

export const SUBMIT_HELP = `torch-saliency submit: put images on the queue for workers (docs/service.md)

Examples:
  torch-saliency submit --redis redis://127.0.0.1:6379 --model classifier --method grad-cam --layer features.5 cat.jpg dog.jpg
  torch-saliency submit --redis redis://127.0.0.1:6379 --model classifier --predict --wait cat.jpg

Options:
  --redis URL          the queue's Redis  [required]
  --model NAME         a model's name in the workers' folder  [required]
  --predict            class scores instead of an explanation (--top N)
  --method NAME        explain method (default grad-cam needs --layer); --<option> VALUE: an option of the method
  --target T           class index, label, top-1 (default) or top-k
  --wait               wait for each job and print its answer (exit 1 if any failed)
  --timeout-ms N       with --wait: give up (and cancel the job) after N ms
  --queue NAME         queue name (torch-saliency)

Exit code 1 when Redis does not answer within 10 s; 2 when an image file cannot be read.
`;

const FLAGS: FlagSpecs = {
  redis: { type: 'string' },
  model: { type: 'string' },
  predict: { type: 'boolean' },
  method: { type: 'string' },
  target: { type: 'string' },
  wait: { type: 'boolean' },
  'timeout-ms': { type: 'integer', min: 1 },
  queue: { type: 'string' },
  top: { type: 'integer', min: 1 },
  help: { type: 'boolean', short: 'h' },
};

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    // Strict: our flags, or an option of --method (--max-iter 300, --layer features.5); anything else is a usage error.
    const { values, positionals: files, extra } = parseFlags(argv, FLAGS, { extra: isMethodFlag });
    if (values.help) {
      process.stdout.write(SUBMIT_HELP);
      return 0;
    }
    if (typeof values.redis !== 'string' || typeof values.model !== 'string') throw new UsageError('Expected --redis URL and --model NAME (see --help)');
    if (files.length === 0) throw new UsageError('Expected one or more image files (see --help)');
    const method = methodList((values.method as string | undefined) ?? 'grad-cam');
    if (method.length !== 1) throw new UsageError('Expected one method for --method: a job explains with one method', '--method');
    if (values.predict && extra.length > 0) throw new UsageError(`Unknown option --${extra[0].flag}: --predict takes no method options`, `--${extra[0].flag}`);
    const options: Record<string, unknown> = { method: method[0], ...methodOptions(extra, method).get(method[0]) };
    if (values.target !== undefined) options.target = targetFlag(values.target as string);
    // Every file is read before Redis is asked: a missing one is the caller's error (exit 2), a pipe or a device
    // (/dev/zero) is no image file.
    const images: Buffer[] = [];
    for (const file of files) {
      try {
        if (!(await stat(file)).isFile()) throw new Error('not a regular file');
        images.push(await readFile(file));
      } catch (e) {
        throw new TorchSaliencyError('ERR_IMAGE_DECODE', `Cannot read image '${file}': ${(e as Error).message}`, { argument: 'image', cause: e });
      }
    }
    // An unreachable Redis is one line and exit 1, not a wait without end.
    await checkRedis(values.redis, REDIS_TIMEOUT_MS);
    const producer = createProducer({ redis: values.redis, queue: values.queue as string | undefined });
    let failed = 0;
    try {
      const ids: { file: string; job: string }[] = [];
      for (const [k, file] of files.entries()) {
        const bytes = images[k];
        const job = values.predict
          ? await producer.enqueuePredict(values.model, bytes, { top: (values.top as number | undefined) ?? 5 })
          : await producer.enqueueExplain(values.model, bytes, options as { method: string });
        ids.push({ file, job });
        if (!values.wait) process.stdout.write(`${JSON.stringify({ file, job })}\n`);
      }
      if (values.wait) {
        for (const { file, job } of ids) {
          try {
            const result = await producer.result(job, { timeoutMs: values['timeout-ms'] as number | undefined });
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
