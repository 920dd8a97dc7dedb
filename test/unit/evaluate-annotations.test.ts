// Annotations: plain JSON, COCO and VOC into one form; boxes through readImage's resize; typed errors.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classIndexOf, parseAnnotations, readAnnotations, transformBox, fromVocXml } from '../../lib/evaluate/annotations.js';
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
});
