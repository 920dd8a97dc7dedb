// Annotations: plain JSON, COCO and VOC into one form; boxes through readImage's resize; typed errors.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync, mkdirSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_ANNOTATIONS_BYTES,
  annotationFor,
  classIndexOf,
  parseAnnotations,
  readAnnotations,
  transformBox,
  fromVocXml,
} from '../../lib/evaluate/annotations.js';
import { isCallerError } from '../../lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-annotations-'));

describe('annotations', () => {
  it('reads the plain forms: one entry per object, or a table per image', () => {
    const perObject = parseAnnotations([
      { file: 'a.png', label: 'disc', classIndex: 1, box: [1, 2, 3, 4] },
      { file: 'a.png', label: 'cross', box: [5, 6, 7, 8], difficult: true },
      {
        file: 'b.png',
        class: 2,
        boxes: [
          [0, 0, 4, 4],
          [5, 5, 9, 9],
        ],
      },
    ]);
    expect(perObject).toEqual([
      {
        file: 'a.png',
        objects: [
          { label: 'disc', classIndex: 1, box: [1, 2, 3, 4], difficult: false },
          { label: 'cross', classIndex: undefined, box: [5, 6, 7, 8], difficult: true },
        ],
      },
      {
        file: 'b.png',
        objects: [
          { label: undefined, classIndex: 2, box: [0, 0, 4, 4], difficult: false },
          { label: undefined, classIndex: 2, box: [5, 5, 9, 9], difficult: false },
        ],
      },
    ]);
    const table = parseAnnotations({ 'c.jpg': [{ label: 'cat', box: [0, 0, 10, 10] }] });
    expect(table).toEqual([{ file: 'c.jpg', objects: [{ label: 'cat', classIndex: undefined, box: [0, 0, 10, 10], difficult: false }] }]);
  });

  it('reads COCO (bbox x, y, width, height; iscrowd as difficult)', () => {
    const coco = {
      images: [{ id: 7, file_name: 'x.jpg', width: 100, height: 50 }],
      annotations: [{ image_id: 7, category_id: 3, bbox: [10, 5, 20, 10], iscrowd: 1 }],
      categories: [{ id: 3, name: 'dog' }],
    };
    expect(parseAnnotations(coco)).toEqual([{ file: 'x.jpg', width: 100, height: 50, objects: [{ label: 'dog', box: [10, 5, 30, 15], difficult: true }] }]);
  });

  it('reads a folder of PASCAL VOC XML (1-based inclusive boxes become 0-based exclusive)', async () => {
    const voc = join(dir, 'voc');
    mkdirSync(voc);
    writeFileSync(
      join(voc, '000001.xml'),
      `<annotation><filename>000001.jpg</filename><size><width>353</width><height>500</height><depth>3</depth></size>
       <object><name>dog</name><difficult>0</difficult><bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox></object>
       <object><name>person</name><difficult>1</difficult><bndbox><xmin>8</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox></object></annotation>`,
    );
    const [a] = await readAnnotations(voc);
    expect(a).toEqual({
      file: '000001.jpg',
      width: 353,
      height: 500,
      objects: [
        { label: 'dog', box: [47, 239, 195, 371], difficult: false },
        { label: 'person', box: [7, 11, 352, 498], difficult: true },
      ],
    });
    expect(fromVocXml('<annotation><filename>f.jpg</filename></annotation>', 'x').objects).toEqual([]);
  });

  it('matches labels to the model: exact, any case, or a name of a comma list', () => {
    const labels = ['tench, Tinca tinca', 'tabby, tabby cat', 'Egyptian cat'];
    expect(classIndexOf({ label: 'Egyptian cat', box: [0, 0, 1, 1], difficult: false }, labels, 3, 'x')).toBe(2);
    expect(classIndexOf({ label: 'egyptian cat', box: [0, 0, 1, 1], difficult: false }, labels, 3, 'x')).toBe(2);
    expect(classIndexOf({ label: 'tabby cat', box: [0, 0, 1, 1], difficult: false }, labels, 3, 'x')).toBe(1);
    expect(classIndexOf({ classIndex: 0, box: [0, 0, 1, 1], difficult: false }, undefined, 3, 'x')).toBe(0);
  });

  it('carries boxes through fill, cover and contain resizes', () => {
    // 200 x 100 (h x w) to 100 x 100: fill halves y only; cover scales by 1 and crops 50 rows; contain scales by 0.5, pads 25 columns
    expect(transformBox([10, 20, 30, 40], [200, 100], [100, 100], 'fill')).toEqual([10, 10, 30, 20]);
    expect(transformBox([10, 60, 30, 80], [200, 100], [100, 100], 'cover')).toEqual([10, 10, 30, 30]);
    expect(transformBox([10, 20, 30, 40], [200, 100], [100, 100], 'cover')).toBeNull(); // cropped away
    expect(transformBox([10, 20, 30, 40], [200, 100], [100, 100], 'contain')).toEqual([30, 10, 40, 20]);
  });

  it('bad annotations are ERR_ANNOTATIONS, a caller error naming boxes', async () => {
    const cases: unknown[] = [
      [{ file: 'a.png', label: 'x', box: [3, 3, 1, 1] }],
      [{ file: 'a.png', box: [0, 0, 1, 1] }],
      [{ file: 'a.png', label: 'x' }],
      [{ label: 'x', box: [0, 0, 1, 1] }],
      { images: [], annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1] }], categories: [] },
      42,
    ];
    for (const c of cases) {
      let error: unknown;
      try {
        parseAnnotations(c);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'ERR_ANNOTATIONS', argument: 'boxes' });
      expect(isCallerError(error)).toBe(true);
    }
    writeFileSync(join(dir, 'broken.json'), '{ nope');
    await expect(readAnnotations(join(dir, 'broken.json'))).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS' });
    await expect(readAnnotations(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS' });
    expect(() => classIndexOf({ label: 'zebra', box: [0, 0, 1, 1], difficult: false }, ['cat'], 1, 'x')).toThrow(
      expect.objectContaining({ code: 'ERR_ANNOTATIONS' }),
    );
    expect(() => classIndexOf({ classIndex: 5, box: [0, 0, 1, 1], difficult: false }, undefined, 3, 'x')).toThrow(
      expect.objectContaining({ code: 'ERR_ANNOTATIONS' }),
    );
  });

  // What a careless or hostile annotation file does: each case crashed (TypeError), hung, or read wrong before.
  const voc = (objects: string, head = '') =>
    `${head}<annotation><filename>a.png</filename><size><width>64</width><height>64</height></size>${objects}</annotation>`;
  const obj = (name: string, box = [1, 1, 10, 10]) =>
    `<object><name>${name}</name><bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin><xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;
  const annotationsError = (work: () => unknown) => {
    try {
      work();
    } catch (e) {
      expect(e, String(e)).toMatchObject({ code: 'ERR_ANNOTATIONS', argument: 'boxes' });
      return (e as Error).message;
    }
    throw new Error('expected ERR_ANNOTATIONS');
  };

  it('null or non-object entries, categories, images and annotations are ERR_ANNOTATIONS, not a TypeError', () => {
    const coco = (over: Record<string, unknown>) => ({
      images: [{ id: 1, file_name: 'a.png' }],
      annotations: [{ image_id: 1, category_id: 1, bbox: [1, 1, 5, 5] }],
      categories: [{ id: 1, name: 'square' }],
      ...over,
    });
    for (const c of [
      { 'a.png': [null] },
      [{ file: 'a.png', objects: [null] }],
      [{ file: 'a.png', objects: [7] }],
      { images: 5 },
      coco({ images: [null] }),
      coco({ annotations: [null] }),
      coco({ categories: [null] }),
      coco({ annotations: [{ image_id: 1, category_id: 1, bbox: ['1', '1', '5', '5'] }] }),
    ])
      annotationsError(() => parseAnnotations(c));
  });

  it('an image size that is not two numbers > 0 is refused (it scaled boxes by 0, a negative or a string)', () => {
    for (const size of [{ width: 0, height: 0 }, { width: -64, height: -64 }, { width: '64', height: 64 }, { width: 64 }, { width: Infinity, height: 64 }]) {
      expect(annotationsError(() => parseAnnotations([{ file: 'a.png', label: 'x', box: [1, 1, 5, 5], ...size }]))).toMatch(/width and height/);
      expect(annotationsError(() => parseAnnotations({ images: [{ id: 1, file_name: 'a.png', ...size }], annotations: [], categories: [] }))).toMatch(
        /width and height/,
      );
    }
    // VOC exports that write a size of 0 keep the image's own size.
    expect(fromVocXml(voc(obj('x')).replace('<width>64</width>', '<width>0</width>'), 'x').width).toBeUndefined();
  });

  it('VOC XML is read as XML: comments, attributes, CDATA, entities, parts, whitespace', () => {
    const read = (xml: string) => fromVocXml(xml, 'x');
    // A commented-out object is not an object; one with attributes is; an object's <part>s are not objects.
    expect(read(voc(`<!-- ${obj('ghost')} -->${obj('square')}`)).objects.map((o) => o.label)).toEqual(['square']);
    expect(read(voc(obj('square').replace('<object>', '<object id="1" note="a > b">'))).objects.map((o) => o.label)).toEqual(['square']);
    const withPart = obj('person').replace(
      '</object>',
      `<part><name>head</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></part></object>`,
    );
    expect(read(voc(withPart)).objects).toEqual([{ label: 'person', box: [0, 0, 10, 10], difficult: false }]);
    // Text: CDATA, the predefined entities and character references, surrounding whitespace.
    expect(read('<annotation><filename><![CDATA[a&b.png]]></filename></annotation>').file).toBe('a&b.png');
    expect(read(voc(obj('cat &amp; dog &#x41;&#66;'))).objects[0].label).toBe('cat & dog AB');
    expect(read(voc(obj('\n   square \n  ')).replace('<filename>a.png', '<filename>\n  a.png  ')).file).toBe('a.png');
    expect(read(voc(obj('x'), '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE annotation>\n')).file).toBe('a.png');
    // A declared entity is refused, never expanded (no billion laughs, no file read).
    const bomb = `<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;">]>`;
    expect(annotationsError(() => read(voc(obj('&l2;'), bomb)))).toMatch(/entity &l2;/);
    const xxe = `<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>`;
    expect(annotationsError(() => read(voc(obj('&x;'), xxe)))).toMatch(/entit/i); // refused by the parser: external entities
    // Malformed XML and coordinates that are not decimal numbers (an empty tag was read as 0, '0x10' as 16).
    for (const bad of [
      voc(obj('x')).replace('</annotation>', ''),
      voc('<object><name>x</name></bndbox></object>'),
      voc(obj('x', ['', 1, 10, 10] as never)),
      voc(obj('x', [' ', 1, 10, 10] as never)),
      voc(obj('x', ['0x1', 1, 10, 10] as never)),
      voc(obj('x', [1, 1, 'Infinity', 10] as never)),
      '<annotation><filename>a.png</filename></annotation><second/>',
    ])
      annotationsError(() => read(bad));
  });

  it('no input makes the VOC reader slow: whitespace, unclosed tags and deep nesting stay linear', () => {
    // Before: a regular expression that backtracked took minutes on 10 KB of spaces and seconds on unclosed <object>s.
    const cases = [
      `<annotation><filename>${' '.repeat(200_000)}`,
      `<annotation><filename>a.png</filename><object><name>${' '.repeat(200_000)}x</object>`,
      `<annotation><filename>a.png</filename>${'<object>'.repeat(100_000)}`,
      `${'<a>'.repeat(100_000)}`,
      `<annotation><filename>a.png</filename>${'&'.repeat(100_000)}</annotation>`,
    ];
    const start = performance.now();
    for (const xml of cases) annotationsError(() => fromVocXml(xml, 'x'));
    // A deadline for a hang, not a timing: these take milliseconds.
    expect(performance.now() - start).toBeLessThan(5000);
  });

  it('a folder of thousands of VOC files is read under a small open-file limit; a JSON file with a BOM is read', async () => {
    const many = join(dir, 'many');
    mkdirSync(many);
    for (let i = 0; i < 400; i++) writeFileSync(join(many, `${String(i).padStart(4, '0')}.xml`), voc(obj('square')).replace('a.png', `${i}.png`));
    // Every file opened at once ran out of descriptors (EMFILE, a raw error) on a folder such as VOC2012's 17,125.
    const script = `import('${join(__dirname, '..', '..', 'lib', 'evaluate', 'annotations.ts').replace(/\\/g, '/')}').then(async (m) => { const a = await (m.readAnnotations ?? m.default.readAnnotations)(${JSON.stringify(many)}); console.log(a.length, a[399].file); })`;
    const r = spawnSync('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" --import tsx -e "$0"`, script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('400 399.png');
    const bom = join(dir, 'bom.json');
    writeFileSync(bom, `\ufeff${JSON.stringify([{ file: 'a.png', label: 'x', box: [1, 1, 5, 5] }])}`);
    expect((await readAnnotations(bom))[0].file).toBe('a.png');
  });

  it('a file too large to read is refused before it is read; a file that cannot be read is ERR_ANNOTATIONS', async () => {
    const huge = join(dir, 'huge.json');
    const fd = openSync(huge, 'w');
    ftruncateSync(fd, MAX_ANNOTATIONS_BYTES + 1); // sparse: nothing is written
    closeSync(fd);
    await expect(readAnnotations(huge)).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS', message: expect.stringMatching(/more than/) });
    // A pipe waited forever for a writer, and /dev/zero was read until the string limit (640 MB): not regular files.
    const fifo = join(dir, 'fifo.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(readAnnotations(fifo)).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS', message: expect.stringMatching(/not a regular file/) });
    await expect(readAnnotations('/dev/zero')).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS', message: expect.stringMatching(/not a regular file/) });
    // A folder named like an XML file: reading it fails (EISDIR), which is named as the annotations' fault.
    mkdirSync(join(dir, 'holder'));
    mkdirSync(join(dir, 'holder', 'folder.xml'));
    await expect(readAnnotations(join(dir, 'holder'))).rejects.toMatchObject({ code: 'ERR_ANNOTATIONS' });
  });

  it('matches tens of thousands of images to their annotations without a search per image', () => {
    const n = 50_000;
    const annotations = Array.from({ length: n }, (_, i) => ({ file: `train/${String(i).padStart(12, '0')}.jpg`, objects: [] }));
    const start = performance.now();
    for (let i = 0; i < n; i++) expect(annotationFor(annotations, `${String(i).padStart(12, '0')}.jpg`)).toBe(annotations[i]);
    // A deadline for a hang, not a timing: a search through the array per image took 8 s for 5,000 images and about
    // 15 minutes for these 50,000; an index takes a fraction of a second.
    expect(performance.now() - start).toBeLessThan(10_000);
    // As before: the exact path first, then the first annotation of that base name; a grown array is indexed again.
    const twice = [
      { file: 'a/x.jpg', objects: [] },
      { file: 'b/x.jpg', objects: [] },
      { file: 'x.jpg', objects: [] },
    ];
    expect(annotationFor(twice, 'x.jpg')).toBe(twice[2]);
    expect(annotationFor(twice, 'b/x.jpg')).toBe(twice[1]);
    expect(annotationFor(twice, 'c/x.jpg')).toBe(twice[0]);
    twice.push({ file: 'y.jpg', objects: [] });
    expect(annotationFor(twice, 'y.jpg')).toBe(twice[3]);
  });
});
