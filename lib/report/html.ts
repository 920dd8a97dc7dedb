/**
 * Building blocks of the HTML report: escaping, relative picture links, tables and curve charts as inline
 * SVG. Every string that comes from a user (file names, labels, options, messages) goes through `escape`.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML content and in quoted attribute values. */
export function escape(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** A relative link to a file of the output folder: each segment URL-encoded ('#', '?', '%' and spaces in names). */
export function href(relative: string): string {
  return relative
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

export function img(relative: string, alt: string, cls = ''): string {
  return `<img src="${escape(href(relative))}" alt="${escape(alt)}" loading="lazy"${cls ? ` class="${cls}"` : ''}>`;
}

export function figure(relative: string, caption: string): string {
  return `<figure>${img(relative, caption)}<figcaption>${escape(caption)}</figcaption></figure>`;
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = head.map((h) => `<th>${escape(h)}</th>`).join('');
  // Cells arrive escaped (they may hold markup made here).
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

export function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

export interface ChartSeries {
  name: string;
  colour: string;
  xs: readonly number[];
  ys: readonly number[];
}

/** A line chart of series over [0, 1] x [0, 1] as inline SVG, with axes and a legend. */
export function chart(title: string, series: readonly ChartSeries[]): string {
  const [w, h, left, bottom, top, right] = [260, 170, 34, 26, 18, 8];
  const x = (v: number) => left + v * (w - left - right);
  const y = (v: number) => h - bottom - Math.min(1, Math.max(0, v)) * (h - bottom - top);
  const grid = [0, 0.5, 1]
    .map(
      (t) =>
        `<line x1="${x(0)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" class="grid"/><text x="${left - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>` +
        `<text x="${x(t)}" y="${h - bottom + 14}" text-anchor="middle">${t}</text>`,
    )
    .join('');
  const lines = series
    .map((s) => {
      const points = s.xs.map((xv, i) => `${x(xv).toFixed(1)},${y(s.ys[i]).toFixed(1)}`).join(' ');
      return `<polyline points="${points}" fill="none" stroke="${s.colour}" stroke-width="2"><title>${escape(s.name)}</title></polyline>`;
    })
    .join('');
  const legend = series.map((s, i) => `<text x="${x(0) + 6 + i * 120}" y="${top - 5}" fill="${s.colour}">${escape(s.name)}</text>`).join('');
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${escape(title)}">${grid}${lines}${legend}</svg>`;
}

export const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 1em 2em; color: #1b1b1f; background: #fafafa; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin: 0 0 0.5em; word-break: break-all; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
.meta { color: #555; } .error { color: #a40000; }
section.image { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1em; margin: 1.2em 0; }
.head { display: flex; gap: 1.5em; align-items: flex-start; flex-wrap: wrap; }
.row { display: flex; gap: 0.8em; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0; text-align: center; } figure img, .photo { width: 180px; height: auto; image-rendering: auto; border-radius: 4px; display: block; }
figcaption { font-size: 12px; color: #444; max-width: 180px; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
.chart text { font-size: 10px; fill: #555; } .chart .grid { stroke: #e4e4e4; }
details { margin-top: 0.4em; } pre { font-size: 12px; background: #f3f3f3; padding: 0.5em; overflow-x: auto; }
`;
