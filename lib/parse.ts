/** Option values from text (command-line flags, query strings): numbers, comma lists of numbers, booleans. */

/** "0.1" -> 0.1, "0.05,0.1" -> [0.05, 0.1], "true" -> true, anything else stays a string. */
export function parseValue(text: string | boolean): unknown {
  if (typeof text === 'boolean') return text;
  if (text === 'true') return true;
  if (text === 'false') return false;
  const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : undefined);
  if (num(text) !== undefined) return num(text);
  if (text.includes(',')) {
    const nums = text.split(',').map(num);
    if (nums.every((n) => n !== undefined)) return nums;
  }
  return text;
}
