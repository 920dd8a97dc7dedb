// A TorchScript archive whose bytes were damaged (its records' CRC-32 no longer match) is refused at load
// with ERR_MODEL_LOAD naming the record, from a file and from a Buffer; libtorch itself loaded such an
// archive and returned logits around 1e23.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { goldenImage, model, rejection } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-archive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('archive integrity', () => {
  const good = readFileSync(model('shapes_traced.pt'));

  it('4000 bytes flipped in the middle: ERR_MODEL_LOAD naming the record whose CRC-32 fails, from a file and a Buffer', async () => {
    const bad = Buffer.from(good);
    const mid = Math.floor(bad.length / 2);
    for (let i = mid; i < mid + 4000; i++) bad[i] ^= 0xff;
    const file = join(dir, 'flipped.pt');
    writeFileSync(file, bad);
    for (const source of [file, bad]) {
      const e = await rejection(loadModel(source, { device: 'cpu' }));
      expect(e.code).toBe('ERR_MODEL_LOAD');
      expect(e.message).toMatch(/record '.+' fails its CRC-32 check/);
    }
  });

  it('one bit flipped at 39 offsets over the archive: refused or (outside any record) the same logits; the untouched archive loads', async () => {
    await using ok = await loadModel(good, { device: 'cpu' });
    const logits = (await ok.predict(goldenImage(0))).logits;
    expect(logits.every((x) => Number.isFinite(x) && Math.abs(x) < 1e3)).toBe(true);
    // Offsets spread over the file; each either lands in a record's data (a CRC failure) or in zip structure
    // (then libtorch or the check refuses it); never a model that loads with other weights.
    let caught = 0;
    for (let k = 1; k < 40; k++) {
      const bad = Buffer.from(good);
      const at = Math.floor((k * bad.length) / 40);
      bad[at] ^= 0x01;
      const r = await loadModel(bad, { device: 'cpu' }).then(
        async (m) => {
          const l = (await m.predict(goldenImage(0))).logits;
          m.dispose();
          return Array.from(l).every((x, i) => x === logits[i]) ? 'same' : 'different';
        },
        (e: { code?: string }) => e.code,
      );
      expect(['ERR_MODEL_LOAD', 'same'], `byte ${at}`).toContain(r);
      if (r === 'ERR_MODEL_LOAD') caught++;
    }
    expect(caught).toBeGreaterThan(30);
  });
});
