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

function annotationsError(where: string, message: string, cause?: unknown): TorchSaliencyError {
  return new TorchSaliencyError('ERR_ANNOTATIONS', `Cannot read the annotations ${where}: ${message}`, { argument: 'boxes', cause });
}

function checkBox(value: unknown, where: string): Box {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw annotationsError(where, `expected a box [x0, y0, x1, y1] of four numbers but received ${JSON.stringify(value)}`);
  const [x0, y0, x1, y1] = value as number[];
  if (!(x1 > x0 && y1 > y0)) throw annotationsError(where, `expected a box with x1 > x0 and y1 > y0 but received ${JSON.stringify(value)}`);
  return [x0, y0, x1, y1];
}

/** One object of the plain format: { label | classIndex | class, box | boxes, difficult? }. */
function plainObjects(entry: Record<string, unknown>, where: string): AnnotatedObject[] {
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
    if (typeof file !== 'string' || file === '') throw annotationsError(where, `expected an image file name but received ${JSON.stringify(file)}`);
    const a = byFile.get(file) ?? { file, objects: [] };
    if (typeof size?.width === 'number' && typeof size?.height === 'number') Object.assign(a, { width: size.width, height: size.height });
    a.objects.push(...objects);
    byFile.set(file, a);
  };
  if (Array.isArray(json)) {
    // [{ file, label, box, ... }, ...]: one entry per object (or with `objects`, one per image)
    json.forEach((entry, i) => {
      if (!entry || typeof entry !== 'object') throw annotationsError(where, `entry ${i} is not an object`);
      const e = entry as Record<string, unknown>;
      const file = e.file ?? e.image;
      if (Array.isArray(e.objects))
        add(
          file,
          e.objects.flatMap((o) => plainObjects(o as Record<string, unknown>, `${where} (entry ${i})`)),
          e,
        );
      else add(file, plainObjects(e, `${where} (entry ${i})`), e);
    });
  } else if (json && typeof json === 'object') {
    // { "cat.jpg": [{ label, box }, ...], ... } or { images: { ... } }
    const table = ((json as Record<string, unknown>).images ?? json) as Record<string, unknown>;
    for (const [file, objects] of Object.entries(table)) {
      if (!Array.isArray(objects)) throw annotationsError(where, `expected an array of objects for '${file}'`);
      add(
        file,
        objects.flatMap((o) => plainObjects(o as Record<string, unknown>, `${where} ('${file}')`)),
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
  const names = new Map<number, string>();
  for (const c of json.categories as { id: number; name: string }[]) names.set(c.id, c.name);
  const images = new Map<number, ImageAnnotation>();
  for (const im of json.images as { id: number; file_name: string; width?: number; height?: number }[]) {
    if (typeof im.file_name !== 'string') throw annotationsError(where, `image ${im.id} has no file_name`);
    images.set(im.id, { file: im.file_name, width: im.width, height: im.height, objects: [] });
  }
  for (const a of json.annotations as { image_id: number; category_id: number; bbox: number[]; iscrowd?: number }[]) {
    const image = images.get(a.image_id);
    if (!image) throw annotationsError(where, `an annotation names image_id ${a.image_id}, which is not in images`);
    const label = names.get(a.category_id);
    if (label === undefined) throw annotationsError(where, `an annotation names category_id ${a.category_id}, which is not in categories`);
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4)
      throw annotationsError(where, `expected bbox [x, y, width, height] but received ${JSON.stringify(a.bbox)}`);
    const [x, y, w, h] = a.bbox;
    image.objects.push({ label, box: checkBox([x, y, x + w, y + h], where), difficult: a.iscrowd === 1 });
  }
  return [...images.values()];
}

const tag = (xml: string, name: string): string | undefined => new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml)?.[1];

/** One PASCAL VOC XML file. VOC's boxes are 1-based with inclusive ends: [xmin - 1, ymin - 1, xmax, ymax]. */
export function fromVocXml(xml: string, where: string): ImageAnnotation {
  const file = tag(xml, 'filename');
  if (!file) throw annotationsError(where, 'no <filename>');
  const size = /<size>([\s\S]*?)<\/size>/.exec(xml)?.[1];
  const objects: AnnotatedObject[] = [];
  for (const m of xml.matchAll(/<object>([\s\S]*?)<\/object>/g)) {
    const body = m[1];
    const label = tag(body, 'name');
    const bnd = /<bndbox>([\s\S]*?)<\/bndbox>/.exec(body)?.[1];
    if (!label || !bnd) throw annotationsError(where, 'an <object> without <name> or <bndbox>');
    const [xmin, ymin, xmax, ymax] = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Number(tag(bnd, k)));
    objects.push({ label, box: checkBox([xmin - 1, ymin - 1, xmax, ymax], where), difficult: tag(body, 'difficult') === '1' });
  }
  const width = size ? Number(tag(size, 'width')) : NaN;
  const height = size ? Number(tag(size, 'height')) : NaN;
  return { file, ...(width > 0 && height > 0 ? { width, height } : {}), objects };
}

/** Reads annotations from a JSON file (plain or COCO) or a folder of VOC XML files. */
export async function readAnnotations(path: string): Promise<ImageAnnotation[]> {
  if (typeof path !== 'string' || path === '')
    throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected a file or folder path for boxes but received ${JSON.stringify(path)}`, {
      argument: 'boxes',
    });
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw annotationsError(`'${path}'`, (e as Error).message, e);
  }
  if (info.isDirectory()) {
    const files = (await readdir(path)).filter((f) => f.toLowerCase().endsWith('.xml')).sort();
    if (files.length === 0) throw annotationsError(`'${path}'`, 'the folder holds no .xml files (PASCAL VOC annotations)');
    return Promise.all(files.map(async (f) => fromVocXml(await readFile(join(path, f), 'utf8'), `'${join(path, f)}'`)));
  }
  const text = await readFile(path, 'utf8');
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

/** The annotation of an image file: matched by its path as given, else by its base name. */
export function annotationFor(annotations: readonly ImageAnnotation[], file: string): ImageAnnotation | undefined {
  return annotations.find((a) => a.file === file) ?? annotations.find((a) => basename(a.file) === basename(file));
}
