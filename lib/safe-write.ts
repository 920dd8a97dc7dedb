/**
 * Writing files without losing any: folders made one level at a time (Node 20's recursive mkdir spins
 * forever on some paths, e.g. under /proc), and each file written to a temporary name beside it and renamed
 * over the target, so that a reader or an interruption sees either the old file or the whole new one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, parse, resolve } from 'node:path';
import { TorchSaliencyError } from './errors.js';

/** Temporary files being written now (so that an interrupted program can remove them). */
const pending = new Set<string>();

function folderError(argument: string, path: string, why: string, cause?: unknown): TorchSaliencyError {
  return new TorchSaliencyError(
    'ERR_INVALID_ARG_VALUE',
    `Expected a folder that can be created and written for ${argument} but ${JSON.stringify(path)} ${why}`,
    {
      argument,
      cause,
    },
  );
}

/**
 * Makes `folder` and its missing parents, one level at a time. A level that is a file, or a level that
 * cannot be made, is a typed error naming `argument` (ERR_INVALID_ARG_VALUE).
 */
export async function makeFolder(folder: string, argument = 'path'): Promise<string> {
  const absolute = resolve(folder);
  const { root } = parse(absolute);
  const levels = absolute
    .slice(root.length)
    .split(/[\\/]+/)
    .filter(Boolean);
  let current = root;
  for (const level of levels) {
    current = join(current, level);
    let made = false;
    for (let attempt = 0; attempt < 2 && !made; attempt++) {
      try {
        const s = await stat(current);
        if (!s.isDirectory()) throw folderError(argument, folder, `has a file at ${JSON.stringify(current)}`);
        made = true;
      } catch (e) {
        if (e instanceof TorchSaliencyError) throw e;
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') throw folderError(argument, folder, `cannot be reached at ${JSON.stringify(current)} (${code})`, e);
        try {
          await mkdir(current);
          made = true;
        } catch (m) {
          const mcode = (m as NodeJS.ErrnoException).code;
          // Made by someone else in between: look again.
          if (mcode !== 'EEXIST') throw folderError(argument, folder, `cannot be created at ${JSON.stringify(current)} (${mcode})`, m);
        }
      }
    }
  }
  return absolute;
}

/**
 * Writes `bytes` to `path` atomically (a temporary file in the same folder, then a rename), making the
 * folder first. Paths in `protect` (absolute) are never written: that is a typed error instead.
 */
export async function writeFileAtomic(
  path: string,
  bytes: string | Uint8Array,
  options: { protect?: ReadonlySet<string>; argument?: string } = {},
): Promise<string> {
  const target = resolve(path);
  if (options.protect?.has(target)) {
    throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Refusing to write ${JSON.stringify(path)}: it is one of the input files`, {
      argument: options.argument ?? 'path',
    });
  }
  await makeFolder(dirname(target), options.argument ?? 'path');
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  pending.add(temporary);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, target);
  } catch (e) {
    await rm(temporary, { force: true }).catch(() => {});
    if (e instanceof TorchSaliencyError) throw e;
    throw new TorchSaliencyError('ERR_OUTPUT_WRITE', `Could not write ${JSON.stringify(path)}: ${(e as Error).message}`, {
      argument: options.argument ?? 'path',
      cause: e,
    });
  } finally {
    pending.delete(temporary);
  }
  return path;
}

/** Removes the temporary files of writes still in progress (for an interrupted program). */
export async function removePendingWrites(): Promise<void> {
  await Promise.all([...pending].map((p) => rm(p, { force: true }).catch(() => {})));
}
