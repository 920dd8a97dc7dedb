/** `torch-saliency serve`: the HTTP service over one model, until SIGINT or SIGTERM. */
import { createService } from '../service/index.js';
import { log, openModel, sizeFlag, type Command } from './args.js';

export const serve: Command = {
  name: 'serve',
  summary: ['an HTTP service (POST /predict, POST /explain?method=...; see docs/service.md);', '--port (8080), --host (127.0.0.1), --max-batch (16)'],
  examples: ['serve --model m.pt --labels labels.txt --size 224 --port 8080'],
  run: async (p) => {
    const model = await openModel(p.flags);
    const service = createService(model, {
      size: sizeFlag(p.flags.get('size')),
      fit: p.flags.get('fit') as 'cover' | undefined,
      maxBatch: p.flags.has('max-batch') ? Number(p.flags.get('max-batch')) : undefined,
    });
    const address = await service.listen(Number(p.flags.get('port') ?? 8080), String(p.flags.get('host') ?? '127.0.0.1'));
    log(`torch-saliency: serving ${p.flags.get('model')} on http://${address.address}:${address.port} (device ${model.device})`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        log('torch-saliency: stopping');
        service.close().finally(() => {
          model.dispose();
          resolve();
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
