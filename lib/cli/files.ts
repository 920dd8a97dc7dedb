/**
 * The command line's files: the inputs (files, folders, globs), the output folder checked before any work,
 * one folder per input under it with a unique, readable name, and writes that never overwrite an input
 * nor leave a partial file.
 *
 *   out/summary.json                  the run: options, each image's state, complete: true | false
 *   out/report.html                   with --report
 *   out/<name>/image.png              the image as the model saw it
 *   out/<name>/<method>-c<class>[-a<area>]-<kind>.png
 *   out/<name>/result.json            the image's classes, and per method its maps, options and timings
 */
import { access, constants, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { TorchSaliencyError, invalidValue } from '../errors.js';
import type { PictureKind } from '../explanation.js';
import { makeFolder, writeFileAtomic } from '../safe-write.js';
import { UsageError } from './args.js';

export const PICTURE_KINDS: readonly PictureKind[] = ['overlay', 'heatmap', 'mask', 'preserved'];

/** File name endings taken from a folder or a glob (others there are left alone). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

/** --pictures: a comma list of picture kinds, nothing else (a name never becomes part of a path). */
export function picturesFlag(text: string | undefined): PictureKind[] {
  if (text === undefined) return [...PICTURE_KINDS];
  const list = text.split(',').map((s) => s.trim());
  for (const kind of list) {
    if (!PICTURE_KINDS.includes(kind as PictureKind)) throw invalidValue('--pictures', `a comma list of ${PICTURE_KINDS.join(', ')}`, kind);
  }
  return [...new Set(list)] as PictureKind[];
}

const isImageFile = (file: string) => IMAGE_EXTENSIONS.includes(extname(file).toLowerCase());

/**
 * The image files the operands name, in order: a file as given, a folder's images (sorted, not its
 * subfolders), a glob's matching images (sorted). Each file once. An operand that names nothing is a usage
 * error.
 */
export async function expandInputs(operands: readonly string[]): Promise<string[]> {
  if (operands.length === 0) throw new UsageError('Expected one or more images, folders or globs but received none (see --help)');
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (file: string) => {
    const key = resolve(file);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(file);
    }
  };
  for (const operand of operands) {
    const s = await stat(operand).catch(() => undefined);
    if (s?.isDirectory()) {
      const entries = (await readdir(operand, { withFileTypes: true })).filter((e) => e.isFile() && isImageFile(e.name)).map((e) => e.name);
      if (entries.length === 0)
        throw new UsageError(`Expected images in the folder ${JSON.stringify(operand)} but found none (${IMAGE_EXTENSIONS.join(' ')})`, operand);
      entries.sort().forEach((name) => add(join(operand, name)));
    } else if (s) {
      add(operand);
    } else if (isDynamicPattern(operand)) {
      const files = (await glob(operand, { onlyFiles: true, expandDirectories: false })).filter(isImageFile).sort();
      if (files.length === 0) throw new UsageError(`Expected the pattern ${JSON.stringify(operand)} to match images but it matched none`, operand);
      files.forEach(add);
    } else {
      throw new UsageError(`Expected an image file, a folder or a glob but ${JSON.stringify(operand)} does not exist`, operand);
    }
  }
  return out;
}

/** Names that the output folder's own files take. */
const RESERVED = new Set(['summary.json', 'report.html', 'report']);

/**
 * A readable file-system name from a file's base name: letters and digits of any script kept (猫 stays 猫),
 * anything else that could mean something to a shell or a file system becomes '_'.
 */
export function safeName(file: string): string {
  const stem = basename(file, extname(file)).normalize('NFC');
  const cleaned = stem
    .replace(/[^\p{L}\p{N}\p{M}._-]+/gu, '_')
    .replace(/^[.]+/, '_')
    .slice(0, 100);
  return cleaned === '' || cleaned === '_' ? 'image' : cleaned;
}

/**
 * One distinct name per input, in order: its safe name, then name-2, name-3... for the next inputs with
 * the same one (compared without case, for case-blind file systems). The same inputs give the same names,
 * which is what --resume relies on.
 */
export function uniqueNames(files: readonly string[], taken: (name: string) => boolean = () => false): string[] {
  const used = new Set<string>();
  return files.map((file) => {
    const base = safeName(file);
    let name = base;
    for (let k = 2; used.has(name.toLowerCase()) || RESERVED.has(name.toLowerCase()) || taken(name); k++) name = `${base}-${k}`;
    used.add(name.toLowerCase());
    return name;
  });
}

/** The output folder of a run: checked and made before any work, writes kept inside it and off the inputs. */
export class OutputFolder {
  readonly root: string;
  readonly names: readonly string[];
  readonly #inputs: ReadonlySet<string>;

  private constructor(root: string, inputs: readonly string[]) {
    this.root = root;
    this.#inputs = new Set(inputs.map((f) => resolve(f)));
    // A name whose folder holds an input is not used: nothing may ever be written next to an input's path.
    const inside = (name: string) => [...this.#inputs].some((f) => f.startsWith(join(root, name) + sep));
    this.names = uniqueNames(inputs, inside);
  }

  /**
   * Checks --out before any work: not a file, creatable level by level, writable (a probe file is written
   * and removed). Typed errors naming --out (exit 2).
   */
  static async open(out: string, inputs: readonly string[]): Promise<OutputFolder> {
    const root = await makeFolder(out, '--out');
    try {
      await access(root, constants.W_OK);
      const probe = join(root, `.torch-saliency-probe-${process.pid}`);
      await writeFile(probe, '');
      await rm(probe, { force: true });
    } catch (e) {
      throw new TorchSaliencyError(
        'ERR_INVALID_ARG_VALUE',
        `Expected a writable folder for --out but ${JSON.stringify(out)} is not (${(e as NodeJS.ErrnoException).code})`,
        {
          argument: '--out',
          cause: e,
        },
      );
    }
    return new OutputFolder(root, inputs);
  }

  /** The absolute path of a file in the output folder. */
  path(...parts: string[]): string {
    const p = resolve(this.root, ...parts);
    if (!p.startsWith(this.root + sep)) throw invalidValue('--out', 'a path inside the output folder', p);
    return p;
  }

  /** Writes a file inside the folder atomically; returns its path relative to the folder (with '/'). */
  async write(parts: string[], bytes: string | Uint8Array): Promise<string> {
    const p = this.path(...parts);
    await writeFileAtomic(p, bytes, { protect: this.#inputs, argument: '--out' });
    return relative(this.root, p).split(sep).join('/');
  }
}
