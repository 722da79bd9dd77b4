import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

/**
 * A uPlot line chart of one series. The container keeps the chart instance
 * as `uplot`, so tests (and the curious) can read the data that was drawn.
 * `span` (epoch seconds) is the window the time axis shows: the range asked
 * for, not one fitted to the points (a single point made uPlot span years).
 */
export function Chart ({ xs, ys, label, unit, span }: { xs: number[], ys: Array<number | null>, label: string, unit: string | null, span?: [number, number] }) {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current!
    const width = Math.max(280, Math.min(el.clientWidth || 640, 960))
    const chart = new uPlot({
      width,
      height: 240,
      series: [{}, { label: unit ? `${label} (${unit})` : label, stroke: '#2f6f4f', width: 2, points: { show: xs.length < 60 } }],
      axes: [{}, { size: 56 }],
      scales: { x: { time: true, ...(span && { range: (): [number, number] => span }) } },
    }, [xs, ys], el)
    ;(el as HTMLDivElement & { uplot?: uPlot }).uplot = chart
    const resize = () => chart.setSize({ width: Math.max(280, Math.min(el.clientWidth, 960)), height: 240 })
    addEventListener('resize', resize)
    return () => { removeEventListener('resize', resize); chart.destroy() }
  }, [xs, ys, label, unit, span])
  return <div class="chart" ref={box} data-chart={label} data-points={xs.length} role="img" aria-label={`${label} over time, ${xs.length} points`} />
}
