/**
 * Redis connection options from a URL (redis://[user:password@]host:port[/db], rediss:// for TLS), as
 * BullMQ wants them: commands wait through a reconnect instead of failing (maxRetriesPerRequest null),
 * and a lost connection is retried with a back-off of at most 2 s, so a Redis restart is ridden out.
 */
import { invalidValue } from '../errors.js';

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
