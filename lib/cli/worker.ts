/**
 * `torch-saliency worker`: consumes predict and explain jobs from the queue with the models of --models
 * DIR (or one --model, named 'default'). SIGTERM: stop taking jobs, let running ones finish for
 * --grace-ms, exit 0 (a job still running then is taken back by another worker).
 */
import { createWorker } from '../queue/worker.js';
import { UsageError, exitCode, log, parseFlags } from './args.js';
import { LIMIT_FLAG_SPECS, SERVICE_MODEL_FLAGS, limitsFrom, openModels, stopSignal } from './service-args.js';
import type { Command } from './args.js';

export const WORKER_HELP = `torch-saliency worker: consume jobs from a BullMQ queue on Redis (docs/service.md)

Examples:
  torch-saliency worker --redis redis://127.0.0.1:6379 --models ./models
  torch-saliency worker --redis redis://queue:6379/0 --models ./models --results /srv/results --max-batch 8

Options:
  --redis URL          the queue's Redis  [required]
  --models DIR | --model PATH   the models jobs may name (<name>.pt; --model serves it as 'default')
  --queue NAME         queue name (torch-saliency)
  --results DIR        also write each job's answer to DIR/<job id>.json (atomically)
  --max-batch N        jobs taken at once and merged into one native call (16)
  --lock-duration-ms N (30000) --stalled-interval-ms N (15000)   when a dead worker's job is taken back
  --grace-ms N         on SIGTERM, how long running jobs may finish (10000)
  --device D --threads N --size N|HxW --fit F --score-maps M, and the caps of serve (--cap-max-iter ...; --max-pixels)
`;

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    const { values } = parseFlags(
      argv,
      {
        ...SERVICE_MODEL_FLAGS,
        ...LIMIT_FLAG_SPECS,
        redis: { type: 'string' },
        queue: { type: 'string' },
        results: { type: 'string' },
        'lock-duration-ms': { type: 'integer', min: 1 },
        'stalled-interval-ms': { type: 'integer', min: 1 },
      },
      { positionals: false },
    );
    if (values.help) {
      process.stdout.write(WORKER_HELP);
      return 0;
    }
    if (typeof values.redis !== 'string') throw new UsageError('Expected --redis URL (see --help)');
    const { served } = await openModels(values);
    const limits = limitsFrom(values);
    const worker = createWorker(served, {
      redis: values.redis,
      queue: values.queue as string | undefined,
      results: values.results as string | undefined,
      maxBatch: values['max-batch'] as number | undefined,
      lockDurationMs: values['lock-duration-ms'] as number | undefined,
      stalledIntervalMs: values['stalled-interval-ms'] as number | undefined,
      graceMs: limits.graceMs,
      limits,
      onEvent: (e) => log(`job ${e.job} ${e.state} in ${Math.round(e.ms)} ms${e.reason ? `: ${e.reason}` : ''}`),
    });
    await worker.ready();
    log(`worker ${worker.id} ready: queue ${worker.worker.name} on ${values.redis}, models ${served.map((s) => s.name).join(', ')}`);
    const signal = await stopSignal();
    log(`${signal}: stopping (no new jobs; running ones have ${worker.limits.graceMs} ms)`);
    await worker.close();
    served.forEach((s) => s.model.dispose());
    log(`stopped after ${worker.completed} completed and ${worker.failed} failed jobs`);
    return 0;
  });
}

export const worker: Command = {
  name: 'worker',
  summary: ['consume predict/explain jobs from a BullMQ queue on Redis (worker --help)'],
  examples: ['worker --redis redis://127.0.0.1:6379 --models ./models'],
  main: run,
};
