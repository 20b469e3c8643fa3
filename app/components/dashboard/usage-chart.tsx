import { Link } from "@remix-run/react";
import { lazy, Suspense, type ReactNode } from "react";
import type { UsageRange } from "~/utils/usage-ranges";
import { buildChartData } from "./chart-data";
import { formatCount, formatHour } from "~/utils/format";
import type { ChartPoint, LiveUsage, Part } from "./types";
import { useHydrated } from "~/components/use-hydrated";

// recharts and its dependencies are most of the page's JavaScript; loading them in their own chunk after hydration
// keeps the counter and the rest of the page interactive sooner.
const UsageChartCanvas = lazy(() =>
  import("./usage-chart-canvas.client").then((module) => ({ default: module.UsageChartCanvas })),
);

export const RANGE_OPTIONS: { value: UsageRange; label: string; long: string }[] = [
  { value: "24h", label: "24 h", long: "the last 24 hours" },
  { value: "7d", label: "7 d", long: "the last 7 days" },
  { value: "30d", label: "30 d", long: "the last 30 days" },
];

export interface ChartHistory {
  from: string;
  points: ChartPoint[];
}

// One height for the chart, its placeholder and its messages, so nothing below moves when the chart appears.
const PLOT_BOX = "h-64 w-full sm:h-72";

export function UsageChart({
  range,
  history,
  live,
  limit,
  serverNow,
}: {
  range: UsageRange;
  history: Part<ChartHistory>;
  live: LiveUsage | null;
  limit: number;
  serverNow: string;
}) {
  const option = RANGE_OPTIONS.find((o) => o.value === range) ?? RANGE_OPTIONS[1];
  const points = history.ok ? history.data.points : [];
  return (
    <section
      data-testid="usage-chart"
      data-range={range}
      data-synced-points={points.length}
      aria-labelledby="usage-chart-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div>
          <h2 id="usage-chart-heading" className="text-base font-semibold text-slate-900">
            Usage over {option.long}
          </h2>
          <p className="text-sm text-slate-600">Calls so far in each month, as recorded by the hourly sync (UTC).</p>
        </div>
        <RangePicker current={range} />
      </div>
      <div className="mt-4">
        {history.ok ? (
          <ChartBody
            points={points}
            live={live}
            limit={limit}
            from={Date.parse(history.data.from)}
            to={Math.max(Date.parse(serverNow), live ? Date.parse(live.at) : 0)}
            hourly={range === "24h"}
            emptyText={`No calls were synced in ${option.long}.`}
          />
        ) : (
          <Message>
            Your usage history cannot be loaded right now. The live count above is still accurate; try reloading in a
            minute.
          </Message>
        )}
      </div>
      <Legend showLive={live !== null} />
    </section>
  );
}

function RangePicker({ current }: { current: UsageRange }) {
  return (
    <nav aria-label="Chart range" className="inline-flex rounded-md border border-slate-300 bg-slate-50 p-0.5">
      {RANGE_OPTIONS.map((o) => (
        <Link
          key={o.value}
          to={`?range=${o.value}`}
          preventScrollReset
          aria-current={o.value === current ? "page" : undefined}
          aria-label={`Show ${o.long}`}
          className={`rounded px-3 py-1.5 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 ${
            o.value === current ? "bg-indigo-700 text-white shadow-sm" : "text-slate-700 hover:bg-white"
          }`}
        >
          {o.label}
        </Link>
      ))}
    </nav>
  );
}

function ChartBody({
  points,
  live,
  limit,
  from,
  to,
  hourly,
  emptyText,
}: {
  points: ChartPoint[];
  live: LiveUsage | null;
  limit: number;
  from: number;
  to: number;
  hourly: boolean;
  emptyText: string;
}) {
  const hydrated = useHydrated();
  const data = buildChartData(points, live);
  if (data.length === 0) return <Message>{emptyText}</Message>;
  const last = points.at(-1);
  return (
    <figure>
      {/* Server-rendered, so the numbers are there for screen readers and before (or without) JavaScript. */}
      <figcaption className="sr-only">
        {last
          ? `Latest synced value: ${formatCount(last.used)} calls at ${formatHour(Date.parse(last.hour))}. `
          : "No synced values in this range yet. "}
        {live ? `Now, not yet synced: ${formatCount(live.used)} calls. ` : ""}
        Monthly limit: {formatCount(limit)} calls.
      </figcaption>
      <div className={PLOT_BOX}>
        {hydrated ? (
          <Suspense fallback={<ChartPlaceholder />}>
            <UsageChartCanvas data={data} limit={limit} from={from} to={to} hourly={hourly} />
          </Suspense>
        ) : (
          <ChartPlaceholder />
        )}
      </div>
      {points.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600">
          Your calls appear here as history after the next hourly sync; until then only the live value is shown.
        </p>
      ) : null}
    </figure>
  );
}

function ChartPlaceholder() {
  return (
    <div
      aria-hidden="true"
      className="flex h-full w-full animate-pulse items-center justify-center rounded bg-slate-100"
    >
      <span className="text-sm text-slate-600">Loading chart…</span>
    </div>
  );
}

function Message({ children }: { children: ReactNode }) {
  return (
    <div className={`${PLOT_BOX} flex items-center justify-center rounded border border-dashed border-slate-300 px-6`}>
      <p className="max-w-md text-center text-sm text-slate-700">{children}</p>
    </div>
  );
}

function Legend({ showLive }: { showLive: boolean }) {
  return (
    <ul className="mt-3 flex flex-wrap gap-x-5 gap-y-1 text-xs text-slate-700" aria-label="Chart legend">
      <li className="flex items-center gap-1.5">
        <span aria-hidden="true" className="inline-block h-0.5 w-5 bg-indigo-700" />
        Synced hourly
      </li>
      {showLive ? (
        <li className="flex items-center gap-1.5">
          <span
            aria-hidden="true"
            className="inline-block h-3 w-3 rounded-full border-[3px] border-amber-700 bg-white"
          />
          Now — not yet synced
        </li>
      ) : null}
      <li className="flex items-center gap-1.5">
        <span aria-hidden="true" className="inline-block w-5 border-t-2 border-dashed border-red-700" />
        Monthly limit
      </li>
    </ul>
  );
}
