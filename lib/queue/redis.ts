/**
 * Redis connection options from a URL (redis://[user:password@]host:port[/db], rediss:// for TLS), as
 * BullMQ wants them: commands wait through a reconnect instead of failing (maxRetriesPerRequest null),
 * and a lost connection is retried with a back-off of at most 2 s, so a Redis restart is ridden out.
 */
import { Redis } from 'ioredis';
import { TorchSaliencyError, invalidValue } from '../errors.js';

export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: object;
  maxRetriesPerRequest: null;
  retryStrategy: (times: number) => number;
}

export function redisConnection(url: string): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidValue('redis', 'a URL such as redis://127.0.0.1:6379', url);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw invalidValue('redis', 'a redis:// or rediss:// URL', url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw invalidValue('redis', 'a database number after the port (redis://host:port/0)', url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(2000, 100 * 2 ** Math.min(times, 5)),
  };
}

/**
 * Resolves once Redis at `url` answers a ping; rejects with ERR_REDIS_UNAVAILABLE when it does not within
 * `timeoutMs`. For one-shot commands (submit): the queue's own connections wait through a reconnect without end,
 * so they are made only after this. One connection, no retry, closed before it returns.
 */
export async function checkRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const { maxRetriesPerRequest: _m, retryStrategy: _r, ...where } = redisConnection(url);
  const redis = new Redis({ ...where, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let last: Error | undefined;
  redis.on('error', (e: Error) => (last = e));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    throw new TorchSaliencyError('ERR_REDIS_UNAVAILABLE', `Cannot reach Redis at ${where.host}:${where.port}: ${(last ?? (e as Error)).message}`, {
      argument: 'redis',
      cause: e,
    });
  } finally {
    redis.disconnect();
  }
}
