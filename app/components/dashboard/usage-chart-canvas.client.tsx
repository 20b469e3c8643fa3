import {
  Area,
  Bar,
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
import { useState } from "react";
import { HOUR_MS } from "~/utils/period";
import { type ChartDatum, describeRefused, xTicks } from "./chart-data";
import type { ChartGranularity } from "./types";
import { formatAxisCount, formatClock, formatCount, formatDate, formatHour, formatTick } from "~/utils/format";

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
const MARGIN = { top: 16, right: 12, bottom: 4, left: 4 };
const Y_AXIS_WIDTH = 64;
const DAY_MS = 24 * HOUR_MS;
// amber-600: a filled area needs only the 3:1 of graphics.
const PENDING_BAR = "#d97706";
// rose-700: refused calls, apart from the limit's red-700 line, which the bar views do not draw.
const REFUSED_BAR = "#be123c";

/** The per-hour and per-day bars, stacked bottom to top. */
const BAR_SERIES = [
  { dataKey: "synced", name: "Synced", fill: SYNCED },
  { dataKey: "pending", name: "Not yet synced", fill: PENDING_BAR },
  { dataKey: "refused", name: "Refused", fill: REFUSED_BAR },
] as const;

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

function BarTooltip({ active, payload, granularity }: TooltipContentProps & { granularity: ChartGranularity }) {
  const datum = payload?.[0]?.payload as ChartDatum | undefined;
  if (!active || !datum) return null;
  const start = datum.start ?? datum.t;
  return (
    <div className="rounded border border-slate-300 bg-white px-3 py-2 text-sm shadow-md">
      <p className="font-medium text-slate-900">
        {granularity === "day" ? formatDate(new Date(start)) : formatHour(start)}
      </p>
      <p className="tabular-nums text-slate-700">
        {formatCount((datum.synced ?? 0) + (datum.pending ?? 0))} calls
        {datum.pending ? ` (${formatCount(datum.pending)} not yet synced)` : ""}
      </p>
      {datum.refused ? (
        <p className="tabular-nums text-rose-800">
          {formatCount(datum.refused)} refused ({describeRefused(datum.refusedByStatus ?? {})})
        </p>
      ) : null}
    </div>
  );
}

export interface UsageChartCanvasProps {
  data: ChartDatum[];
  limit: number | null;
  /** Draw the limit in force at each point (`ChartDatum.limit`) as a step line; the current limit keeps its label. */
  limitSteps: boolean;
  yTicks: number[];
  from: number;
  to: number;
  hourly: boolean;
  kind: "line" | ChartGranularity;
}

/**
 * `kind` "line" draws the month's running total against the limit (when `limit` is given, i.e. on the scale);
 * "hour" and "day" draw bars of the calls in each bucket, synced and not-yet-synced stacked. When the plan changed in
 * the range, the limit in force at each hour is one more series on the same data, drawn as a step line.
 */
export function UsageChartCanvas({ data, limit, limitSteps, yTicks, from, to, hourly, kind }: UsageChartCanvasProps) {
  const [width, setWidth] = useState(600);
  // On a time axis recharts sizes bars from the gaps between ticks (a day wide for hourly bars over a week), so each
  // bar gets its width from the plot's width and the number of buckets the range holds, with a gap between bars.
  const bucketMs = kind === "day" ? DAY_MS : HOUR_MS;
  const plotWidth = Math.max(1, width - Y_AXIS_WIDTH - MARGIN.left - MARGIN.right);
  const barSize = Math.max(1, Math.floor((plotWidth / Math.max(1, (to - from) / bucketMs)) * 0.8));
  // A finger cannot hover: once the chart is touched, a tap (a click) shows the value under it instead. The
  // pointerdown comes before the tap's click, so the very first tap already shows a value.
  const [trigger, setTrigger] = useState<"hover" | "click">("hover");
  return (
    <div
      className="h-full w-full"
      onPointerDown={(event) => setTrigger(event.pointerType === "mouse" ? "hover" : "click")}
    >
      <ResponsiveContainer
        width="100%"
        height="100%"
        initialDimension={{ width: 600, height: 288 }}
        onResize={(newWidth) => setWidth(newWidth)}
      >
        {/* The accessibility layer makes the plot a tab stop whose arrow keys walk the tooltip from value to value;
          a tap shows a value's tooltip like a hover does. The same values are in the table below the chart. */}
        <ComposedChart
          data={data}
          margin={MARGIN}
          barGap={0}
          barCategoryGap="15%"
          accessibilityLayer
          title="Usage chart"
          desc="Use the left and right arrow keys to read each value. The values are also in the table below."
        >
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
            domain={[0, yTicks.at(-1) ?? 1]}
            ticks={yTicks}
            allowDecimals={false}
            tickFormatter={formatAxisCount}
            tick={{ fill: AXIS_TEXT, fontSize: 12 }}
            stroke={AXIS_TEXT}
            width={Y_AXIS_WIDTH}
          />
          {kind === "line" ? (
            <Tooltip content={UsageTooltip} trigger={trigger} cursor={{ stroke: AXIS_TEXT, strokeDasharray: "3 3" }} />
          ) : (
            <Tooltip
              trigger={trigger}
              content={(props: TooltipContentProps) => <BarTooltip {...props} granularity={kind} />}
              cursor={{ fill: GRID }}
            />
          )}
          {kind === "line" && limit !== null ? (
            <ReferenceLine
              y={limit}
              stroke={limitSteps ? "none" : LIMIT}
              strokeWidth={2}
              strokeDasharray="6 4"
              label={{ value: `Limit ${formatCount(limit)}`, position: "insideTopLeft", fill: LIMIT, fontSize: 12 }}
            />
          ) : null}
          {kind === "line" && limit !== null && limitSteps ? (
            <Line
              dataKey="limit"
              name="Limit in force"
              type="stepAfter"
              stroke={LIMIT}
              strokeWidth={2}
              strokeDasharray="6 4"
              dot={false}
              activeDot={false}
              isAnimationActive={false}
              connectNulls
            />
          ) : null}
          {kind === "line" ? (
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
          ) : null}
          {kind === "line" ? (
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
          ) : null}
          {kind === "line"
            ? null
            : BAR_SERIES.map((series) => (
                <Bar
                  key={series.dataKey}
                  dataKey={series.dataKey}
                  name={series.name}
                  stackId="calls"
                  fill={series.fill}
                  barSize={barSize}
                  isAnimationActive={false}
                />
              ))}
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}
