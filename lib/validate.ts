/**
 * Argument checks shared by every option normaliser. Each returns the value in its checked type or
 * throws a TorchSaliencyError naming the argument.
 */
import { invalidType, invalidValue, outOfRange } from './errors.js';

export interface NumberRule {
  min?: number;
  max?: number;
  /** exclusive lower bound */
  above?: number;
  integer?: boolean;
}

function rangeText(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  const parts: string[] = [];
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  return parts.length ? `${kind} ${parts.join(' and ')}` : kind;
}

export function number(name: string, value: unknown, rule: NumberRule = {}): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidType(name, rangeText(rule), value);
  if (!Number.isFinite(value)) throw outOfRange(name, `${rangeText(rule)} (finite)`, value);
  if (rule.integer && !Number.isInteger(value)) throw outOfRange(name, rangeText(rule), value);
  if (rule.min !== undefined && value < rule.min) throw outOfRange(name, rangeText(rule), value);
  if (rule.max !== undefined && value > rule.max) throw outOfRange(name, rangeText(rule), value);
  if (rule.above !== undefined && value <= rule.above) throw outOfRange(name, rangeText(rule), value);
  return value;
}

export function optionalNumber(name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
  return value === undefined ? fallback : number(name, value, rule);
}

export function boolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidType(name, 'a boolean', value);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const expected = `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidType(name, expected, value);
  if (!(allowed as readonly string[]).includes(value)) throw invalidValue(name, expected, value);
  return value as T;
}

export function string(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidType(name, 'a non-empty string', value);
  return value;
}

/** A number or a non-empty array of numbers, each checked by `rule`. */
export function numberList(name: string, value: unknown, fallback: number[], rule: NumberRule = {}): number[] {
  if (value === undefined) return fallback;
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw invalidType(name, `${rangeText(rule)} or a non-empty array of them`, value);
  return list.map((v, i) => number(`${name}[${i}]`, v, rule));
}

export function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidType(name, 'an object', value);
  return value as Record<string, unknown>;
}

/** Rejects keys a caller misspelt, listing the known ones. */
export function knownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key) && value[key] !== undefined) {
      throw invalidValue(`${name}.${key}`, `one of the options ${known.join(', ')}`, key);
    }
  }
}

/** [h, w] from a number or a pair. */
export function size(name: string, value: unknown): [number, number] {
  if (typeof value === 'number') {
    const s = number(name, value, { integer: true, min: 1, max: 16384 });
    return [s, s];
  }
  if (Array.isArray(value) && value.length === 2) {
    return [number(`${name}[0]`, value[0], { integer: true, min: 1, max: 16384 }), number(`${name}[1]`, value[1], { integer: true, min: 1, max: 16384 })];
  }
  throw invalidType(name, 'a positive integer or a [height, width] pair', value);
}
