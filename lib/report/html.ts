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

/** A table; `options.rowClass` gives a row a class (e.g. 'flagged'), `options.className` the table. */
export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  options: { className?: string; rowClass?: (row: number) => string | undefined } = {},
): string {
  const th = head.map((h) => `<th>${escape(h)}</th>`).join('');
  // Cells arrive escaped (they may hold markup made here).
  const body = rows
    .map((r, i) => {
      const cls = options.rowClass?.(i);
      return `<tr${cls ? ` class="${escape(cls)}"` : ''}>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`;
    })
    .join('');
  return `<table${options.className ? ` class="${escape(options.className)}"` : ''}><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
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

/** How a chart lays out its axes (every field optional: the explain report's curves use the defaults). */
export interface ChartAxes {
  /** Size in CSS pixels (default 260 x 170). */
  width?: number;
  height?: number;
  /** The y range drawn (default [0, 1]); values outside it are drawn at its edge. */
  yMin?: number;
  yMax?: number;
  /** Labelled ticks on x, at positions in [0, 1] (default 0, 0.5, 1); labels longer than 3 characters are slanted. */
  xTicks?: readonly { at: number; label: string }[];
  /** Labelled grid lines on y (default yMin, the middle, yMax). */
  yTicks?: readonly number[];
  /** The series' names written above the plot (default true; false when the page keys the colours once). */
  legend?: boolean;
}

/** Where a point lands in a chart's pixels: x in [0, 1] across the plot, y in [yMin, yMax] up it (clamped). */
export function chartScale(axes: ChartAxes = {}) {
  const width = axes.width ?? 260;
  const slanted = axes.xTicks?.some((t) => t.label.length > 3) ?? false;
  const longest = Math.max(0, ...(axes.xTicks ?? []).map((t) => t.label.length));
  const bottom = slanted ? Math.min(120, 16 + Math.ceil(3.8 * longest)) : 26;
  const height = (axes.height ?? 170) + (slanted ? bottom - 26 : 0);
  const [left, top, right] = [34, 18, slanted ? 24 : 8];
  const yMin = axes.yMin ?? 0;
  const yMax = axes.yMax ?? 1;
  return {
    width,
    height,
    left,
    top,
    bottom,
    slanted,
    x: (v: number) => left + v * (width - left - right),
    y: (v: number) => height - bottom - ((Math.min(yMax, Math.max(yMin, v)) - yMin) / (yMax - yMin)) * (height - bottom - top),
  };
}

/**
 * A line chart as inline SVG, with axes and (unless axes.legend is false) a legend: by default series over
 * [0, 1] x [0, 1]. Points whose y is not a finite number are left out of their line.
 */
export function chart(title: string, series: readonly ChartSeries[], axes: ChartAxes = {}): string {
  const s = chartScale(axes);
  const { x, y } = s;
  const yMin = axes.yMin ?? 0;
  const yMax = axes.yMax ?? 1;
  const yTicks = axes.yTicks ?? [yMin, (yMin + yMax) / 2, yMax];
  const xTicks = axes.xTicks ?? [0, 0.5, 1].map((t) => ({ at: t, label: String(t) }));
  const round = (v: number) => String(Math.round(v * 100) / 100);
  const grid =
    yTicks
      .map(
        (t) =>
          `<line x1="${x(0)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" class="grid"/><text x="${s.left - 4}" y="${y(t) + 4}" text-anchor="end">${round(t)}</text>`,
      )
      .join('') +
    xTicks
      .map((t) =>
        s.slanted
          ? `<text x="${x(t.at)}" y="${s.height - s.bottom + 12}" text-anchor="end" transform="rotate(-40 ${x(t.at)} ${s.height - s.bottom + 12})">${escape(t.label)}</text>`
          : `<text x="${x(t.at)}" y="${s.height - s.bottom + 14}" text-anchor="middle">${escape(t.label)}</text>`,
      )
      .join('');
  const lines = series
    .map((line) => {
      const points = line.xs
        .map((xv, i) => [xv, line.ys[i]])
        .filter(([, yv]) => Number.isFinite(yv))
        .map(([xv, yv]) => `${x(xv).toFixed(1)},${y(yv).toFixed(1)}`)
        .join(' ');
      return `<polyline points="${points}" fill="none" stroke="${line.colour}" stroke-width="2"><title>${escape(line.name)}</title></polyline>`;
    })
    .join('');
  const legend =
    axes.legend === false
      ? ''
      : series.map((line, i) => `<text x="${x(0) + 6 + i * 120}" y="${s.top - 5}" fill="${line.colour}">${escape(line.name)}</text>`).join('');
  return `<svg class="chart" viewBox="0 0 ${s.width} ${s.height}" width="${s.width}" height="${s.height}" role="img" aria-label="${escape(title)}">${grid}${lines}${legend}</svg>`;
}

/** Colours of the methods, one each, in order (distinct for the colour-blind as far as eight go: Okabe & Ito). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442'];

export function colourOf(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/**
 * A picture with rectangles (and a ring at a point) drawn over it in SVG, in the picture's own pixel
 * coordinates (`width` x `height`), whatever size the page shows it at.
 */
export function framed(
  picture: string,
  alt: string,
  width: number,
  height: number,
  rects: readonly { x: number; y: number; width: number; height: number }[],
  ring?: { y: number; x: number; className: string },
): string {
  const boxes = rects.map((r) => `<rect x="${r.x}" y="${r.y}" width="${r.width}" height="${r.height}" class="box"/>`).join('');
  const radius = Math.max(2, Math.round(Math.min(height, width) / 40));
  const mark = ring ? `<circle cx="${ring.x + 0.5}" cy="${ring.y + 0.5}" r="${radius}" class="${escape(ring.className)}"/>` : '';
  return `<div class="pic">${img(picture, alt)}<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" aria-hidden="true">${boxes}${mark}</svg></div>`;
}

/** What the evaluation and scan pages add to STYLE. */
export const PAGES_STYLE = `
section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1em; margin: 1.2em 0; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; margin-right: 0.4em; vertical-align: -0.1em; }
table.scores td:not(:first-child), table.scores th:not(:first-child) { text-align: right; }
table.scores td { white-space: nowrap; } table.scores td:first-child { white-space: normal; word-break: break-all; }
.pic { position: relative; width: 180px; } .pic img { width: 180px; height: auto; display: block; border-radius: 4px; }
.pic svg { position: absolute; inset: 0; width: 100%; height: 100%; }
.pic .box { fill: none; stroke: #16a34a; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.pic .hit, .pic .miss { fill: none; stroke-width: 2.5; vector-effect: non-scaling-stroke; } .pic .hit { stroke: #1d4ed8; } .pic .miss { stroke: #dc2626; }
`;

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
