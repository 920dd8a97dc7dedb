/**
 * `torch-saliency serve`: the HTTP service over --model PATH or --models DIR, or with --redis URL a front
 * that puts the work on the queue for `torch-saliency worker` processes. SIGTERM stops it gracefully.
 */
import { createFront, createModelService, createService, type SaliencyService } from '../service/index.js';
import { createProducer } from '../queue/producer.js';
import { UsageError, exitCode, log, parseFlags } from './args.js';
import { LIMIT_FLAG_SPECS, SERVICE_MODEL_FLAGS, limitsFrom, openModels, stopSignal } from './service-args.js';
import type { Command } from './args.js';

export const SERVE_HELP = `torch-saliency serve: the HTTP service (docs/service.md)

Examples:
  torch-saliency serve --model classifier.pt --labels labels.txt --size 224
  torch-saliency serve --models ./models --port 8080 --max-queue 64 --timeout-ms 30000
  torch-saliency serve --redis redis://127.0.0.1:6379 --default-model classifier

Options:
  --model PATH | --models DIR   one model (POST /predict, /explain) or every <name>.pt of DIR (POST /v1/models/<name>/...)
  --labels PATH --device D --threads N --size N|HxW --fit F --score-maps M   as for explain
  --port N (8080)  --host H (127.0.0.1)  --max-batch N (16)  --concurrency N (1)
  --redis URL          send the work to a BullMQ queue for workers instead of running it here
  --queue NAME         queue name (torch-saliency)   --default-model NAME   model of /predict and /explain with --redis
  --log                JSON request logs on stdout
Limits (defaults in docs/service.md): --max-body-bytes --max-pixels --max-images --max-queue --timeout-ms
  --headers-timeout-ms --request-timeout-ms --max-connections --grace-ms --release-cache-after-ms
  --cap-max-iter --cap-num-masks --cap-samples --cap-iterations --cap-areas --cap-targets
`;

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    const { values } = parseFlags(
      argv,
      {
        ...SERVICE_MODEL_FLAGS,
        ...LIMIT_FLAG_SPECS,
        port: { type: 'integer', min: 0, max: 65535 },
        host: { type: 'string' },
        concurrency: { type: 'integer', min: 1 },
        redis: { type: 'string' },
        queue: { type: 'string' },
        'default-model': { type: 'string' },
        log: { type: 'boolean' },
      },
      { positionals: false },
    );
    if (values.help) {
      process.stdout.write(SERVE_HELP);
      return 0;
    }
    const limits = limitsFrom(values);
    const common = {
      maxBatch: values['max-batch'] as number | undefined,
      concurrency: values.concurrency as number | undefined,
      limits,
      logger: values.log === true,
    };
    let service: SaliencyService;
    let dispose = async () => {};
    let what: string;
    if (typeof values.redis === 'string') {
      if (values.model !== undefined || values.models !== undefined)
        throw new UsageError('With --redis the workers hold the models: give --models to `torch-saliency worker`, not to serve');
      const producer = createProducer({ redis: values.redis, queue: values.queue as string | undefined, maxQueue: limits.maxQueue ?? 64 });
      service = createFront(producer, { ...common, defaultModel: values['default-model'] as string | undefined });
      what = `queue ${producer.queue.name} on ${values.redis}`;
    } else {
      const { served, single } = await openModels(values);
      service = single ? createService(served[0].model, { ...common, size: served[0].size, fit: served[0].fit }) : createModelService(served, common);
      dispose = async () => served.forEach((s) => s.model.dispose());
      what = single ? String(values.model) : `${served.length} models from ${values.models} (${served.map((s) => s.name).join(', ')})`;
    }
    const address = await service.listen((values.port as number | undefined) ?? 8080, (values.host as string | undefined) ?? '127.0.0.1');
    log(`serving ${what} on http://${address.address}:${address.port}`);
    const signal = await stopSignal();
    log(`${signal}: stopping (new requests refused; work in flight has ${service.limits.graceMs} ms to finish, then it is cancelled)`);
    await service.close();
    await dispose();
    log('stopped');
    return 0;
  });
}

export const serve: Command = {
  name: 'serve',
  summary: ['an HTTP service over --model or --models DIR, or a front for queue workers with --redis (serve --help)'],
  examples: ['serve --model m.pt --labels labels.txt --size 224 --port 8080', 'serve --redis redis://127.0.0.1:6379 --default-model classifier'],
  main: run,
};
