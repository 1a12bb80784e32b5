import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

// Charts with uPlot: canvas drawing and styles set through the CSSOM, so the console's strict CSP
// (style-src 'self', api/console.ts) holds without 'unsafe-inline'. Each chart is a <figure> with a
// caption and its figures as a table beside it: the chart is for the eye, the table is what a
// screen reader, a keyboard user or an auditor reads (and what the browser tests read).

export interface ChartSeries {
  label: string;
  /** one value per x; null for none */
  values: Array<number | null>;
}

export interface ChartProps {
  id: string;
  caption: string;
  /** x labels, one per point, in order (days, months, quarters since issue) */
  x: string[];
  series: ChartSeries[];
  /** one series drawn as bars (a roll-forward), else lines */
  bars?: boolean;
  /** how a y value reads (money in the program's currency, points, a rate) */
  format: (v: number) => string;
}

/** Colours with at least 4.5:1 contrast on white, told apart by more than hue (dashes on lines). */
const COLOURS = ['#12355b', '#b35c00', '#2a7f62', '#8a1c1c', '#6b4c9a', '#555555'];
const HEIGHT_PX = 260;

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  // redrawn when the figures change, not on every render of the page around it (a close polls each second)
  const figures = JSON.stringify([props.x, props.series, props.bars ?? false]);
  useEffect(() => {
    const el = box.current;
    if (!el || props.x.length === 0) return;
    const xs = props.x.map((_, i) => i);
    const bars = props.bars ? uPlot.paths.bars!({ size: [0.6, 80] }) : null;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: HEIGHT_PX,
      scales: { x: { time: false, range: props.bars ? [-0.5, xs.length - 0.5] : undefined } },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      axes: [
        {
          values: (_u, splits) => splits.map((s) => (Number.isInteger(s) ? (props.x[s] ?? '') : '')),
          // index steps that fall on whole weeks or quarters of days, labels at least 110 px apart
          incrs: [1, 2, 3, 4, 6, 7, 14, 28, 56, 91, 182],
          space: 110,
        },
        { values: (_u, splits) => splits.map((s) => props.format(s)), size: 90 },
      ],
      series: [
        { label: 'x' },
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          fill: props.bars ? COLOURS[i % COLOURS.length] : undefined,
          width: 2,
          dash: props.bars || i === 0 ? undefined : [6 * i, 3],
          paths: bars ?? undefined,
          points: { show: !props.bars && props.x.length < 40 },
        })),
      ],
    };
    const plot = new uPlot(opts, [xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: HEIGHT_PX }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [figures]);
  return (
    <figure class="chart" aria-labelledby={`${props.id}-caption`}>
      <figcaption id={`${props.id}-caption`}>{props.caption}</figcaption>
      <div ref={box} role="img" aria-label={`Chart: ${props.caption}; its figures are in the table below`} />
      <details>
        <summary>Figures</summary>
        <table data-testid={`${props.id}-figures`}>
          <thead>
            <tr>
              <th scope="col" />
              {props.series.map((s) => (
                <th scope="col" key={s.label}>
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {props.x.map((x, i) => (
              <tr key={x}>
                <th scope="row">{x}</th>
                {props.series.map((s) => {
                  const v = s.values[i];
                  return <td key={s.label}>{v === null || v === undefined ? '—' : props.format(v)}</td>;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
