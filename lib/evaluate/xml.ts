/**
 * A small XML reader for annotation files (PASCAL VOC): elements, their text and their children, in one pass
 * over the text (linear time, whatever the input: no regular expression that can backtrack). Comments,
 * processing instructions, the DOCTYPE and attributes are skipped; CDATA is text; the five predefined entities
 * and character references are decoded. Entities a DOCTYPE declares are refused, never expanded: no "billion
 * laughs", no external file read. Anything malformed throws an Error whose message says what and where.
 */

export interface XmlElement {
  name: string;
  /** The element's own text (its children's excluded), entities decoded, not trimmed. */
  text: string;
  children: XmlElement[];
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Nesting deeper than this is refused (no annotation format comes near it). */
const MAX_DEPTH = 256;

function lineOf(xml: string, at: number): number {
  let line = 1;
  for (let i = 0; i < at && i < xml.length; i++) if (xml.charCodeAt(i) === 10) line++;
  return line;
}

function decode(xml: string, from: number, to: number): string {
  const raw = xml.slice(from, to);
  if (!raw.includes('&')) return raw;
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const amp = raw.indexOf('&', i);
    if (amp < 0) {
      out += raw.slice(i);
      break;
    }
    out += raw.slice(i, amp);
    const semi = raw.indexOf(';', amp);
    const name = semi < 0 ? '' : raw.slice(amp + 1, semi);
    if (semi < 0 || semi - amp > 12) throw new Error(`an '&' that starts no entity (line ${lineOf(xml, from + amp)})`);
    let char: string | undefined = PREDEFINED[name];
    if (char === undefined && /^#[0-9]+$|^#x[0-9a-fA-F]+$/.test(name)) {
      const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (code > 0 && code <= 0x10ffff) char = String.fromCodePoint(code);
    }
    if (char === undefined)
      throw new Error(`the entity &${name}; is not one XML predefines (declared entities are not expanded; line ${lineOf(xml, from + amp)})`);
    out += char;
    i = semi + 1;
  }
  return out;
}

/** Parses `xml` into its root element. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  const fail = (what: string, at = i): never => {
    throw new Error(`${what} (line ${lineOf(xml, at)})`);
  };
  const skipTo = (end: string, what: string): void => {
    const at = xml.indexOf(end, i);
    if (at < 0) fail(`an unclosed ${what}`);
    i = at + end.length;
  };
  if (xml.charCodeAt(0) === 0xfeff) i = 1;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > i) {
      const top = stack[stack.length - 1];
      if (top) top.text += decode(xml, i, textEnd);
      else if (xml.slice(i, textEnd).trim() !== '') fail('text outside the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<!--', i)) skipTo('-->', 'comment');
    else if (xml.startsWith('<![CDATA[', i)) {
      const start = i + 9;
      skipTo(']]>', 'CDATA section');
      const top = stack[stack.length - 1];
      if (!top) fail('a CDATA section outside the root element', start);
      top.text += xml.slice(start, i - 3);
    } else if (xml.startsWith('<?', i)) skipTo('?>', 'processing instruction');
    else if (xml.startsWith('<!DOCTYPE', i)) {
      // Skipped with its internal subset; its entity declarations are never used (decode refuses them).
      const open = xml.indexOf('[', i);
      const close = xml.indexOf('>', i);
      if (close < 0) fail('an unclosed DOCTYPE');
      if (open >= 0 && open < close) {
        i = open;
        skipTo(']', 'DOCTYPE');
        skipTo('>', 'DOCTYPE');
      } else i = close + 1;
    } else if (xml.startsWith('</', i)) {
      const close = xml.indexOf('>', i);
      if (close < 0) fail('an unclosed end tag');
      const name = xml.slice(i + 2, close).trim();
      const top = stack.pop();
      if (!top || top.name !== name) fail(`</${name}> closes ${top ? `<${top.name}>` : 'nothing'}`);
      i = close + 1;
    } else {
      // A start tag: its name, then attributes (skipped, quoted values may hold '>'), then '>' or '/>'.
      let j = i + 1;
      while (j < xml.length && !/[\s/>]/.test(xml[j])) j++;
      const name = xml.slice(i + 1, j);
      if (name === '') fail("a '<' that starts no tag");
      let quote = '';
      while (j < xml.length && (quote || xml[j] !== '>')) {
        const c = xml[j];
        if (quote) {
          if (c === quote) quote = '';
        } else if (c === '"' || c === "'") quote = c;
        j++;
      }
      if (j >= xml.length) fail(`an unclosed <${name}>`);
      const selfClosing = xml[j - 1] === '/' && !quote;
      const element: XmlElement = { name, text: '', children: [] };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) fail(`a second root element <${name}>`);
      else root = element;
      if (!selfClosing) {
        if (stack.length >= MAX_DEPTH) fail(`elements nested more than ${MAX_DEPTH} deep`);
        stack.push(element);
      }
      i = j + 1;
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1].name}> is never closed`, xml.length);
  if (!root) fail('no element', 0);
  return root!;
}

/** The first direct child of `element` named `name`. */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

/** The trimmed text of the first direct child named `name`, if there is one. */
export function childText(element: XmlElement, name: string): string | undefined {
  return child(element, name)?.text.trim();
}
