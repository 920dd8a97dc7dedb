/**
 * XML for annotation files (PASCAL VOC), read with fast-xml-parser: elements, their text and their children.
 * Comments, processing instructions, the DOCTYPE and attributes are skipped; CDATA is text; the five
 * predefined entities and character references are decoded here. Entities a DOCTYPE declares are refused,
 * never expanded: no "billion laughs", no external file read. Anything malformed throws an Error that says
 * what and where.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  name: string;
  /** The element's own text (its children's excluded), entities decoded, not trimmed. */
  text: string;
  children: XmlElement[];
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Nesting deeper than this is refused (no annotation format comes near it). */
const MAX_DEPTH = 256;

const TEXT = '#text';
const CDATA = '#cdata';

/** fast-xml-parser's ordered output: one key (a tag name, TEXT or CDATA) per node, ':@' for attributes. */
type XmlNode = Record<string, unknown>;

const PARSER = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  processEntities: false, // decoded by decode(): predefined entities and character references only
  trimValues: false,
  cdataPropName: CDATA,
});

function elementName(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@' && k !== TEXT && k !== CDATA);
}

function decode(raw: string): string {
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
    if (semi < 0 || semi - amp > 12) throw new Error(`an '&' that starts no entity (in '${raw.slice(amp, amp + 16)}')`);
    let char: string | undefined = PREDEFINED[name];
    if (char === undefined && /^#[0-9]+$|^#x[0-9a-fA-F]+$/.test(name)) {
      const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (code > 0 && code <= 0x10ffff) char = String.fromCodePoint(code);
    }
    if (char === undefined) throw new Error(`the entity &${name}; is not one XML predefines (declared entities are not expanded)`);
    out += char;
    i = semi + 1;
  }
  return out;
}

/**
 * Parses `xml` (fast-xml-parser's validator, then its parser) into elements with their text decoded here:
 * the five predefined entities and character references only. Anything malformed throws an Error that says
 * what and on which line.
 */
export function parseXml(xml: string): XmlElement {
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`${valid.err.msg} (line ${valid.err.line})`);
  const nodes = PARSER.parse(xml) as XmlNode[];
  const roots = nodes.filter((n) => elementName(n) !== undefined);
  if (roots.length === 0) throw new Error('no element (line 1)');
  if (roots.length > 1) throw new Error(`a second root element <${elementName(roots[1])}>`);
  // Iteratively (no recursion to overflow), depth-first: each element with its nodes still to convert.
  const root: XmlElement = { name: elementName(roots[0])!, text: '', children: [] };
  const stack: { element: XmlElement; nodes: XmlNode[]; depth: number }[] = [{ element: root, nodes: roots[0][root.name] as XmlNode[], depth: 1 }];
  while (stack.length > 0) {
    const { element, nodes: content, depth } = stack.pop()!;
    for (const node of content) {
      if (TEXT in node) element.text += decode(String(node[TEXT]));
      else if (CDATA in node) element.text += (node[CDATA] as XmlNode[]).map((t) => String(t[TEXT] ?? '')).join('');
      else {
        const name = elementName(node);
        if (name === undefined) continue;
        if (depth >= MAX_DEPTH) throw new Error(`elements nested more than ${MAX_DEPTH} deep`);
        const e: XmlElement = { name, text: '', children: [] };
        element.children.push(e);
        stack.push({ element: e, nodes: node[name] as XmlNode[], depth: depth + 1 });
      }
    }
  }
  return root;
}

/** The first direct child of `element` named `name`. */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

/** The trimmed text of the first direct child named `name`, if there is one. */
export function childText(element: XmlElement, name: string): string | undefined {
  return child(element, name)?.text.trim();
}
