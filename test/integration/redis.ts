// A throw-away redis-server for the queue tests: Debian's binary on a free loopback port, stopped by the
// test; no persistence unless given a folder (then an append-only file, fsync'ed on every write, so that a
// restart keeps the queue as an operator's persistent Redis would). `.ci/run` installs redis-server when it is missing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  readonly port: number;
  readonly persistDir?: string;
  #child?: ChildProcess;

  constructor(port: number, persistDir?: string) {
    this.port = port;
    this.persistDir = persistDir;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: { persistDir?: string } = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options.persistDir);
    await server.start();
    return server;
  }

  /** Starts redis-server on this port and resolves once it accepts connections. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const persistence = this.persistDir ? ['--dir', this.persistDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
      const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--loglevel', 'notice'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.#child = child;
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out}`));
      });
    });
  }

  /** Stops it (SIGTERM) and waits for the process to end. */
  stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
