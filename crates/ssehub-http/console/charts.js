// Small charts drawn by hand in SVG: a sparkline of the last minute of one figure.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 120;
const HEIGHT = 32;

/**
 * Draws `values` (oldest first) into the <svg> `svg` as a line over a filled area, scaled to
 * the largest value, and says what it shows in its <title> for screen readers.
 */
export function sparkline(svg, values, label) {
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(HEIGHT - 2 - (v / max) * (HEIGHT - 4)).toFixed(1)}`);
  svg.replaceChildren();
  const title = document.createElementNS(SVG, 'title');
  const lastValue = values.length ? values[values.length - 1] : 0;
  title.textContent = `${label}: ${lastValue} now, at most ${max} over the last ${values.length} s`;
  svg.append(title);
  if (points.length === 0) return;
  const area = document.createElementNS(SVG, 'polygon');
  area.setAttribute('points', `0,${HEIGHT} ${points.join(' ')} ${((values.length - 1) * step).toFixed(1)},${HEIGHT}`);
  area.setAttribute('class', 'spark-area');
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.join(' '));
  line.setAttribute('class', 'spark-line');
  svg.append(area, line);
  svg.dataset.points = String(values.length);
}
