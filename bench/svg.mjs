// Hand-written SVG charts (no dependencies): grouped bars, one group per load point, one bar per path.

const PALETTE = ['#9e9e9e', '#4e79a7', '#f28e2b', '#59a14f', '#76b7b2', '#e15759', '#b07aa1', '#edc948'];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (v >= 10) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

/**
 * @param {{title: string, yLabel: string, groups: string[], series: Array<{name: string, values: Array<number|null>}>}} o
 * @returns {string} an SVG document
 */
export function barChart({ title, yLabel, groups, series }) {
  const W = Math.max(640, 90 + groups.length * (series.length * 16 + 28));
  const H = 380;
  const L = 70, R = 20, T = 40, B = 90;
  const plotW = W - L - R, plotH = H - T - B;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null))));
  const y = (v) => T + plotH - (v / max) * plotH;
  const groupW = plotW / groups.length;
  const barW = Math.min(22, (groupW - 16) / series.length);
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<text transform="translate(16 ${T + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  groups.forEach((g, gi) => {
    const x0 = L + gi * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, si) => {
      const v = s.values[gi];
      if (v == null) return;
      const x = x0 + si * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(T + plotH - y(v)).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${s.name} @ ${g}: ${fmt(v)}`)}</title></rect>`);
    });
    parts.push(`<text x="${L + gi * groupW + groupW / 2}" y="${T + plotH + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${T + plotH}" y2="${T + plotH}" stroke="#333"/>`);
  // Legend
  let lx = L, ly = H - 40;
  series.forEach((s, si) => {
    const w = 22 + s.name.length * 6.5;
    if (lx + w > W - R) { lx = L; ly += 16; }
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]}"/>`);
    parts.push(`<text x="${lx + 14}" y="${ly}">${esc(s.name)}</text>`);
    lx += w;
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
