/**
 * Object annotations for the pointing game: a plain JSON of boxes per image, COCO JSON, or a folder of
 * PASCAL VOC XML files, read into one form (boxes [x0, y0, x1, y1] in the image's own pixels, ends
 * exclusive), and boxes carried through the resize that readImage applies. A file that cannot be read as
 * one of these is an ERR_ANNOTATIONS error naming what is wrong and where.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { TorchSaliencyError } from '../errors.js';
import type { Fit } from '../image.js';
import { child, childText, parseXml } from './xml.js';

/** The largest annotation file read (a JSON text longer than this cannot be a JavaScript string anyway). */
export const MAX_ANNOTATIONS_BYTES = 512 * 2 ** 20;

/** Files of a VOC folder read at a time (a folder of 17,000 files must not exhaust the open-file limit). */
const READ_CONCURRENCY = 16;

export type Box = readonly [number, number, number, number];

export interface AnnotatedObject {
  /** The class as the annotation names it (matched to the model's labels by classIndexOf). */
  label?: string;
  /** The class index, when the annotation gives it. */
  classIndex?: number;
  box: Box;
  /** Marked difficult by the annotation (VOC's <difficult>, COCO's iscrowd). */
  difficult: boolean;
}

export interface ImageAnnotation {
  /** The image's file name as the annotation gives it. */
  file: string;
  /** The image's own size, when the annotation states it. */
  width?: number;
  height?: number;
  objects: AnnotatedObject[];
}

/** A value as an error message shows it: its JSON, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

function annotationsError(where: string, message: string, cause?: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ERR_ANNOTATIONS', `Cannot read the annotations ${where}: ${message}`, { argument: 'boxes', cause });
}

function checkBox(value: unknown, where: string): Box {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw annotationsError(where, `expected a box [x0, y0, x1, y1] of four numbers but received ${shown(value)}`);
  const [x0, y0, x1, y1] = value as number[];
  if (!(x1 > x0 && y1 > y0)) throw annotationsError(where, `expected a box with x1 > x0 and y1 > y0 but received ${shown(value)}`);
  return [x0, y0, x1, y1];
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** An image size an annotation states: absent, or both sides positive finite numbers. */
function imageSize(width: unknown, height: unknown, where: string): { width?: number; height?: number } {
  if (width === undefined && height === undefined) return {};
  const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  if (!ok(width) || !ok(height))
    throw annotationsError(where, `expected the image's width and height as numbers > 0 but received ${shown(width)} x ${shown(height)}`);
  return { width: width as number, height: height as number };
}

/** One object of the plain format: { label | classIndex | class, box | boxes, difficult? }. */
function plainObjects(entry: unknown, where: string): AnnotatedObject[] {
  if (!isObject(entry)) throw annotationsError(where, `expected an object { label | classIndex, box | boxes } but received ${shown(entry)}`);
  const cls = entry.classIndex ?? entry.class ?? entry.label;
  const label = typeof entry.label === 'string' ? entry.label : typeof cls === 'string' ? cls : undefined;
  const classIndex = typeof entry.classIndex === 'number' ? entry.classIndex : typeof entry.class === 'number' ? entry.class : undefined;
  if (label === undefined && classIndex === undefined) throw annotationsError(where, 'an object has neither label nor classIndex');
  if (classIndex !== undefined && !(Number.isInteger(classIndex) && classIndex >= 0))
    throw annotationsError(where, `expected a class index (an integer >= 0) but received ${classIndex}`);
  const boxes = entry.boxes !== undefined ? entry.boxes : entry.box !== undefined ? [entry.box] : undefined;
  if (!Array.isArray(boxes) || boxes.length === 0) throw annotationsError(where, 'an object has no box (give box: [x0, y0, x1, y1] or boxes: [...])');
  return boxes.map((b) => ({ label, classIndex, box: checkBox(b, where), difficult: entry.difficult === true || entry.difficult === 1 }));
}

function fromPlain(json: unknown, where: string): ImageAnnotation[] {
  const byFile = new Map<string, ImageAnnotation>();
  const add = (file: unknown, objects: AnnotatedObject[], size?: { width?: unknown; height?: unknown }) => {
    if (typeof file !== 'string' || file === '') throw annotationsError(where, `expected an image file name but received ${shown(file)}`);
    const a = byFile.get(file) ?? { file, objects: [] };
    Object.assign(a, imageSize(size?.width, size?.height, `${where} ('${file}')`));
    a.objects.push(...objects);
    byFile.set(file, a);
  };
  if (Array.isArray(json)) {
    // [{ file, label, box, ... }, ...]: one entry per object (or with `objects`, one per image)
    json.forEach((entry, i) => {
      if (!isObject(entry)) throw annotationsError(where, `entry ${i} is not an object`);
      const e = entry;
      const file = e.file ?? e.image;
      if (Array.isArray(e.objects))
        add(
          file,
          e.objects.flatMap((o) => plainObjects(o, `${where} (entry ${i})`)),
          e,
        );
      else add(file, plainObjects(e, `${where} (entry ${i})`), e);
    });
  } else if (json && typeof json === 'object') {
    // { "cat.jpg": [{ label, box }, ...], ... } or { images: { ... } }
    const table = ((json as Record<string, unknown>).images ?? json) as Record<string, unknown>;
    if (!isObject(table)) throw annotationsError(where, 'expected a table of image names (an object) for images');
    for (const [file, objects] of Object.entries(table)) {
      if (!Array.isArray(objects)) throw annotationsError(where, `expected an array of objects for '${file}'`);
      add(
        file,
        objects.flatMap((o) => plainObjects(o, `${where} ('${file}')`)),
      );
    }
  } else {
    throw annotationsError(where, 'expected an array of objects or a table of image names');
  }
  return [...byFile.values()];
}

function isCoco(json: unknown): json is { images: unknown[]; annotations: unknown[]; categories: unknown[] } {
  const j = json as Record<string, unknown>;
  return !!j && typeof j === 'object' && Array.isArray(j.images) && Array.isArray(j.annotations) && Array.isArray(j.categories);
}

function fromCoco(json: { images: unknown[]; annotations: unknown[]; categories: unknown[] }, where: string): ImageAnnotation[] {
  const names = new Map<unknown, string>();
  json.categories.forEach((c, i) => {
    if (!isObject(c) || typeof c.name !== 'string') throw annotationsError(where, `expected categories[${i}] to be { id, name } but received ${shown(c)}`);
    names.set(c.id, c.name);
  });
  const images = new Map<unknown, ImageAnnotation>();
  json.images.forEach((im, i) => {
    if (!isObject(im)) throw annotationsError(where, `expected images[${i}] to be { id, file_name } but received ${shown(im)}`);
    if (typeof im.file_name !== 'string' || im.file_name === '') throw annotationsError(where, `image ${shown(im.id)} has no file_name`);
    images.set(im.id, { file: im.file_name, ...imageSize(im.width, im.height, `${where} (image ${shown(im.id)})`), objects: [] });
  });
  json.annotations.forEach((a, i) => {
    if (!isObject(a)) throw annotationsError(where, `expected annotations[${i}] to be { image_id, category_id, bbox } but received ${shown(a)}`);
    const image = images.get(a.image_id);
    if (!image) throw annotationsError(where, `an annotation names image_id ${shown(a.image_id)}, which is not in images`);
    const label = names.get(a.category_id);
    if (label === undefined) throw annotationsError(where, `an annotation names category_id ${shown(a.category_id)}, which is not in categories`);
    const bbox = a.bbox;
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw annotationsError(where, `expected bbox [x, y, width, height] of four numbers but received ${shown(bbox)}`);
    const [x, y, w, h] = bbox as number[];
    image.objects.push({ label, box: checkBox([x, y, x + w, y + h], where), difficult: a.iscrowd === 1 });
  });
  return [...images.values()];
}

/** A VOC coordinate or size: a decimal number, nothing else (an empty tag is not 0, '0x10' is not 16). */
function vocNumber(text: string | undefined): number {
  return text !== undefined && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
}

/**
 * One PASCAL VOC XML file. VOC's boxes are 1-based with inclusive ends: [xmin - 1, ymin - 1, xmax, ymax].
 * Only the root's own <object> children count (not those in comments, nor the <part>s of an object); a
 * <size> of 0 (some exports write it) counts as none.
 */
export function fromVocXml(xml: string, where: string): ImageAnnotation {
  let root;
  try {
    root = parseXml(xml);
  } catch (e) {
    throw annotationsError(where, `not well-formed XML: ${(e as Error).message}`, e);
  }
  const file = childText(root, 'filename');
  if (!file) throw annotationsError(where, 'no <filename>');
  const objects: AnnotatedObject[] = [];
  for (const o of root.children.filter((c) => c.name === 'object')) {
    const label = childText(o, 'name');
    const bnd = child(o, 'bndbox');
    if (!label || !bnd) throw annotationsError(where, 'an <object> without <name> or <bndbox>');
    const texts = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => childText(bnd, k));
    const [xmin, ymin, xmax, ymax] = texts.map(vocNumber);
    if (![xmin, ymin, xmax, ymax].every(Number.isFinite))
      throw annotationsError(where, `expected <xmin>, <ymin>, <xmax> and <ymax> as numbers in '${label}''s <bndbox> but received ${shown(texts)}`);
    objects.push({ label, box: checkBox([xmin - 1, ymin - 1, xmax, ymax], where), difficult: childText(o, 'difficult') === '1' });
  }
  const size = child(root, 'size');
  const width = size ? vocNumber(childText(size, 'width')) : NaN;
  const height = size ? vocNumber(childText(size, 'height')) : NaN;
  return { file, ...(width > 0 && height > 0 && Number.isFinite(width * height) ? { width, height } : {}), objects };
}

/** The text of an annotation file, refused when too large to read (a typed error, as any read failure). */
async function readText(path: string, where: string): Promise<string> {
  try {
    const info = await stat(path);
    // A device or a pipe (/dev/zero, a FIFO) would be read without end or wait forever.
    if (!info.isFile()) throw annotationsError(where, 'not a regular file');
    if (info.size > MAX_ANNOTATIONS_BYTES)
      throw annotationsError(where, `the file has ${info.size} bytes, more than the ${MAX_ANNOTATIONS_BYTES} an annotation file may have`);
    const text = await readFile(path, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch (e) {
    if (e instanceof TorchSaliencyError) throw e;
    throw annotationsError(where, (e as Error).message, e);
  }
}

/** Maps `items` through `work`, at most `limit` at a time, keeping their order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await work(items[k]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** Reads annotations from a JSON file (plain or COCO) or a folder of VOC XML files. */
export async function readAnnotations(path: string): Promise<ImageAnnotation[]> {
  if (typeof path !== 'string' || path === '')
    throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected a file or folder path for boxes but received ${shown(path)}`, {
      argument: 'boxes',
    });
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw annotationsError(`'${path}'`, (e as Error).message, e);
  }
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (e) {
      throw annotationsError(`'${path}'`, (e as Error).message, e);
    }
    const files = names.filter((f) => f.toLowerCase().endsWith('.xml')).sort();
    if (files.length === 0) throw annotationsError(`'${path}'`, 'the folder holds no .xml files (PASCAL VOC annotations)');
    return mapLimited(files, READ_CONCURRENCY, async (f) => {
      const where = `'${join(path, f)}'`;
      return fromVocXml(await readText(join(path, f), where), where);
    });
  }
  const text = await readText(path, `'${path}'`);
  if (text.trimStart().startsWith('<')) return [fromVocXml(text, `'${path}'`)];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw annotationsError(`'${path}'`, `not JSON (${(e as Error).message})`, e);
  }
  return isCoco(json) ? fromCoco(json, `'${path}'`) : fromPlain(json, `'${path}'`);
}

/** Parses annotations already in memory (plain or COCO form). */
export function parseAnnotations(json: unknown): ImageAnnotation[] {
  return isCoco(json) ? fromCoco(json, 'given') : fromPlain(json, 'given');
}

/**
 * The model's class index for an object: its classIndex, else its label matched against the model's labels
 * (exactly, then case-insensitively, then against the first name of a comma list such as ImageNet's
 * "tabby, tabby cat").
 */
export function classIndexOf(object: AnnotatedObject, labels: readonly string[] | undefined, numClasses: number, where: string): number {
  let index = object.classIndex;
  if (index === undefined && object.label !== undefined) {
    const name = object.label.trim().toLowerCase();
    const all = labels ?? [];
    index = all.indexOf(object.label);
    if (index < 0) index = all.findIndex((l) => l.toLowerCase() === name);
    if (index < 0) index = all.findIndex((l) => l.split(',').some((part) => part.trim().toLowerCase() === name));
    if (index < 0)
      throw annotationsError(
        where,
        `the label '${object.label}' is none of the model's ${labels ? `${labels.length} labels` : 'labels (it has none: give --labels or classIndex)'}`,
      );
  }
  if (index === undefined || index >= numClasses) throw annotationsError(where, `class ${index} is not below the model's ${numClasses} classes`);
  return index;
}

/**
 * A box in an image of `from` ([height, width]) carried into the image readImage makes of it at `to` with
 * `fit`: scaled ('fill'), scaled and centre-cropped ('cover'), or scaled and centre-padded ('contain'); then
 * rounded to whole pixels and clipped to the new image. Null when nothing of it is left.
 */
export function transformBox(box: Box, from: readonly [number, number], to: readonly [number, number], fit: Fit): Box | null {
  const [h0, w0] = from;
  const [h, w] = to;
  let sx = w / w0;
  let sy = h / h0;
  if (fit !== 'fill') sx = sy = fit === 'cover' ? Math.max(sx, sy) : Math.min(sx, sy);
  const ox = (w - w0 * sx) / 2;
  const oy = (h - h0 * sy) / 2;
  // Whole pixels, as the pointing game tests them.
  const x0 = Math.max(0, Math.round(box[0] * sx + ox));
  const y0 = Math.max(0, Math.round(box[1] * sy + oy));
  const x1 = Math.min(w, Math.round(box[2] * sx + ox));
  const y1 = Math.min(h, Math.round(box[3] * sy + oy));
  return x1 > x0 && y1 > y0 ? [x0, y0, x1, y1] : null;
}

interface AnnotationIndex {
  size: number;
  byFile: Map<string, ImageAnnotation>;
  byBase: Map<string, ImageAnnotation>;
}

/** Per annotations array, its files and base names (the first of each wins, as a search from the start finds). */
const indexes = new WeakMap<readonly ImageAnnotation[], AnnotationIndex>();

function indexFor(annotations: readonly ImageAnnotation[]): AnnotationIndex {
  let index = indexes.get(annotations);
  if (!index || index.size !== annotations.length) {
    index = { size: annotations.length, byFile: new Map(), byBase: new Map() };
    for (const a of annotations) {
      if (!index.byFile.has(a.file)) index.byFile.set(a.file, a);
      const base = basename(a.file);
      if (!index.byBase.has(base)) index.byBase.set(base, a);
    }
    indexes.set(annotations, index);
  }
  return index;
}

/**
 * The annotation of an image file: matched by its path as given, else by its base name. An index of the array
 * is made once: a search through it for each of COCO's 118,000 images took an hour of blocked event loop.
 */
export function annotationFor(annotations: readonly ImageAnnotation[], file: string): ImageAnnotation | undefined {
  const index = indexFor(annotations);
  return index.byFile.get(file) ?? index.byBase.get(basename(file));
}
