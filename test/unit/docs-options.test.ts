// The options tables of the docs against the defaults the code uses (lib/methods): one source of truth, the
// code; the tables must say what it does. docs/methods/README.md holds the options every method takes,
// docs/methods/<method>.md each method's own (and any common option whose default the method sets itself).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMON_DEFAULTS } from '../../lib/methods/common.js';
import { getMethod, methodNames } from '../../lib/methods/index.js';
import { formatDefault, type OptionDefault } from '../../lib/methods/types.js';
import { SCAN_DEFAULTS } from '../../lib/backdoor/scan.js';
import { INPUT_AGNOSTIC_SCAN_DEFAULTS } from '../../lib/backdoor/scan-input-agnostic.js';
import { NEURAL_CLEANSE_SCAN_DEFAULTS } from '../../lib/backdoor/scan-neural-cleanse.js';
import { EVALUATE_DEFAULTS } from '../../lib/evaluate/evaluate.js';
import { FIDELITY_DEFAULTS } from '../../lib/evaluate/fidelity.js';
import { SANITY_DEFAULTS } from '../../lib/evaluate/sanity.js';

const DOCS = join(__dirname, '..', '..', 'docs', 'methods');
const EVALUATION = join('..', 'evaluation.md');

interface Row {
  names: string[];
  default: string;
}

/** The rows of the table under the heading (default "## Options"): the option names of the first cell, and the default cell. */
function optionsTable(file: string, heading = /^## Options/): Row[] {
  const lines = readFileSync(join(DOCS, file), 'utf8').split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) throw new Error(`${file} has no "${heading.source}" section`);
  const rows: Row[] = [];
  for (const line of lines.slice(start + 1)) {
    if (rows.length > 0 && !line.startsWith('|')) break;
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').map((c) => c.trim());
    if (cells[1] === 'option' || /^-+$/.test(cells[1])) continue;
    rows.push({ names: [...cells[1].matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]), default: cells[2] });
  }
  return rows;
}

const COMMON = COMMON_DEFAULTS as Readonly<Record<string, OptionDefault>>;

describe('options tables', () => {
  it('docs/methods/README.md gives every common option its default', () => {
    const rows = optionsTable('README.md');
    expect(rows.map((r) => r.names[0]).sort()).toEqual(Object.keys(COMMON).sort());
    for (const row of rows) expect(row.default.startsWith(formatDefault(COMMON[row.names[0]])), `${row.names[0]}: ${row.default}`).toBe(true);
  });

  for (const name of methodNames()) {
    it(`docs/methods/${name}.md gives every option of the method its default`, () => {
      const defaults = getMethod(name).defaults as Readonly<Record<string, OptionDefault>>;
      const rows = optionsTable(`${name}.md`);
      for (const key of Object.keys(defaults))
        expect(
          rows.some((r) => r.names.length === 1 && r.names[0] === key),
          `a row for ${key}`,
        ).toBe(true);
      for (const row of rows) {
        if (row.names.length !== 1) {
          // A row pointing at the common options (no default of its own).
          expect(row.default, row.names.join(', ')).toBe('');
          for (const n of row.names) expect(Object.keys(COMMON), n).toContain(n);
          continue;
        }
        const [option] = row.names;
        const value = option in defaults ? defaults[option] : COMMON[option];
        expect(value, `${option} is not an option of ${name}`).not.toBeUndefined();
        expect(row.default.startsWith(formatDefault(value)), `${option}: the table says "${row.default}", the code ${formatDefault(value)}`).toBe(true);
      }
    });
  }

  // The backdoor scan's options: the ones every scan takes and each scan method's own, in one table per page.
  for (const [file, own] of [
    ['input-agnostic.md', INPUT_AGNOSTIC_SCAN_DEFAULTS],
    ['neural-cleanse.md', NEURAL_CLEANSE_SCAN_DEFAULTS],
  ] as const) {
    it(`docs/methods/${file} gives every option of its backdoor scan its default`, () => {
      const defaults = { ...SCAN_DEFAULTS, ...own } as Readonly<Record<string, OptionDefault>>;
      const rows = optionsTable(file, /^### Scan options/);
      expect(rows.map((r) => r.names[0]).sort()).toEqual(Object.keys(defaults).sort());
      for (const row of rows) {
        const value = defaults[row.names[0]];
        expect(row.default.startsWith(formatDefault(value)), `${row.names[0]}: the table says "${row.default}", the code ${formatDefault(value)}`).toBe(true);
      }
    });
  }

  // Evaluation: evaluate()'s own options, the curves' and the sanity check's, one table each in docs/evaluation.md.
  for (const [heading, defaults] of [
    [/^### Options of evaluate\(\)/, EVALUATE_DEFAULTS],
    [/^### Options of the deletion and insertion curves/, FIDELITY_DEFAULTS],
    [/^### Options of the sanity check/, SANITY_DEFAULTS],
  ] as const) {
    it(`docs/evaluation.md "${heading.source}" gives every option its default`, () => {
      const d = defaults as Readonly<Record<string, OptionDefault>>;
      const rows = optionsTable(EVALUATION, heading);
      expect(rows.map((r) => r.names[0]).sort()).toEqual(Object.keys(d).sort());
      for (const row of rows) expect(row.default.startsWith(formatDefault(d[row.names[0]])), `${row.names[0]}: ${row.default}`).toBe(true);
    });
  }
});
