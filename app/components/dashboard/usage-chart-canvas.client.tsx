import {
  Area,
  CartesianGrid,
  ComposedChart,
  Line,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
  type DotItemDotProps,
  type TooltipContentProps,
} from "recharts";
import { type ChartDatum, xTicks, yTicks } from "./chart-data";
import { formatAxisCount, formatClock, formatCount, formatHour, formatTick } from "~/utils/format";

/**
 * The recharts drawing itself. A `.client` module: the Remix compiler leaves it out of the server build, so recharts
 * never runs during server rendering (it measures the DOM and would render differently there).
 */

// Tailwind's palette, spelled out because SVG attributes cannot take classes: indigo-700, amber-700, red-700,
// slate-600 and slate-200. Each clears WCAG AA (3:1 for graphics, 4.5:1 for the text ones) on white.
const SYNCED = "#4338ca";
const PENDING = "#b45309";
const LIMIT = "#b91c1c";
const AXIS_TEXT = "#475569";
const GRID = "#e2e8f0";

function LiveDot({ cx, cy, payload }: DotItemDotProps) {
  if (!(payload as ChartDatum).live || cx == null || cy == null) return null;
  return <circle cx={cx} cy={cy} r={6} fill="#ffffff" stroke={PENDING} strokeWidth={3} />;
}

function UsageTooltip({ active, payload }: TooltipContentProps) {
  const datum = payload?.[0]?.payload as ChartDatum | undefined;
  if (!active || !datum) return null;
  const value = datum.live ? datum.pending : datum.synced;
  return (
    <div className="rounded border border-slate-300 bg-white px-3 py-2 text-sm shadow-md">
      <p className="font-medium text-slate-900">
        {datum.live ? `Now (${formatClock(datum.t)} UTC) — not yet synced` : formatHour(datum.t)}
      </p>
      <p className="tabular-nums text-slate-700">{formatCount(value ?? 0)} calls this month</p>
    </div>
  );
}

export function UsageChartCanvas({
  data,
  limit,
  from,
  to,
  hourly,
}: {
  data: ChartDatum[];
  limit: number;
  from: number;
  to: number;
  hourly: boolean;
}) {
  const yAxisTicks = yTicks(data, limit);
  return (
    <ResponsiveContainer width="100%" height="100%" initialDimension={{ width: 600, height: 288 }}>
      <ComposedChart data={data} margin={{ top: 16, right: 12, bottom: 4, left: 4 }}>
        <CartesianGrid stroke={GRID} vertical={false} />
        <XAxis
          dataKey="t"
          type="number"
          scale="time"
          domain={[from, to]}
          ticks={xTicks(from, to, hourly)}
          tickFormatter={(ms: number) => formatTick(ms, hourly)}
          tick={{ fill: AXIS_TEXT, fontSize: 12 }}
          stroke={AXIS_TEXT}
          minTickGap={28}
        />
        <YAxis
          domain={[0, yAxisTicks.at(-1) ?? 1]}
          ticks={yAxisTicks}
          allowDecimals={false}
          tickFormatter={formatAxisCount}
          tick={{ fill: AXIS_TEXT, fontSize: 12 }}
          stroke={AXIS_TEXT}
          width={64}
        />
        <Tooltip content={UsageTooltip} cursor={{ stroke: AXIS_TEXT, strokeDasharray: "3 3" }} />
        <ReferenceLine
          y={limit}
          stroke={LIMIT}
          strokeWidth={2}
          strokeDasharray="6 4"
          label={{ value: `Limit ${formatCount(limit)}`, position: "insideTopLeft", fill: LIMIT, fontSize: 12 }}
        />
        <Area
          dataKey="synced"
          name="Synced"
          type="linear"
          stroke={SYNCED}
          strokeWidth={2}
          fill={SYNCED}
          fillOpacity={0.12}
          dot={data.length <= 48 ? { r: 3, fill: SYNCED, strokeWidth: 0 } : false}
          activeDot={{ r: 5 }}
          isAnimationActive={false}
          connectNulls={false}
        />
        <Line
          dataKey="pending"
          name="Now, not yet synced"
          type="linear"
          stroke={PENDING}
          strokeWidth={2}
          strokeDasharray="5 4"
          dot={LiveDot}
          activeDot={{ r: 6, fill: "#ffffff", stroke: PENDING, strokeWidth: 3 }}
          isAnimationActive={false}
          connectNulls
        />
      </ComposedChart>
    </ResponsiveContainer>
  );
}
