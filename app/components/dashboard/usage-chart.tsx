import { Form, Link } from "@remix-run/react";
import { lazy, Suspense, useId, useState, type ReactNode } from "react";
import { USAGE_VIEWS, type UsageRange, type UsageView } from "~/utils/usage-ranges";
import {
  buildBarData,
  buildChartData,
  type ChartDatum,
  describeRefused,
  highestLimit,
  limitChanges,
  refusedInRange,
  withRefusedBars,
  yScale,
} from "./chart-data";
import { formatClock, formatCount, formatDate, formatHour, formatPercent } from "~/utils/format";
import type { ChartBars, ChartGranularity, ChartPoint, KeyUsageView, LiveUsage, OutcomeHourView, Part } from "./types";
import { useHydrated } from "~/components/use-hydrated";
import type { UsageChartCanvasProps } from "./usage-chart-canvas.client";

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

const VIEW_OPTIONS = Object.entries(USAGE_VIEWS).map(([value, { label }]) => ({ value: value as UsageView, label }));

export interface ChartHistory {
  from: string;
  points: ChartPoint[];
  bars: ChartBars | null;
}

// One height for the chart, its placeholder and its messages, so nothing below moves when the chart appears.
const PLOT_BOX = "h-64 w-full sm:h-72";

/**
 * The pickers are links (and the key picker a GET form), so the view, the range and the key live in the URL
 * together: shareable, and no JavaScript needed.
 */
export function chartSearch(range: UsageRange, view: UsageView, keyId: string | null = null): string {
  const search = new URLSearchParams({ range });
  if (view !== "cumulative") search.set("view", view);
  if (keyId) search.set("key", keyId);
  return `?${search.toString()}`;
}

export function UsageChart({
  range,
  view,
  keys,
  keyId,
  history,
  live,
  limit,
  serverNow,
  outcomes = [],
}: {
  range: UsageRange;
  view: UsageView;
  /** The customer's keys, for the key picker; null when they could not be loaded. */
  keys: KeyUsageView[] | null;
  /** The key the chart is drawn for, or null for all calls. */
  keyId: string | null;
  history: Part<ChartHistory>;
  live: LiveUsage | null;
  limit: number;
  serverNow: string;
  /** The account's answers per hour by status, for the refused calls; empty when a key is picked or unavailable. */
  outcomes?: OutcomeHourView[];
}) {
  const option = RANGE_OPTIONS.find((o) => o.value === range) ?? RANGE_OPTIONS[1];
  const points = history.ok ? history.data.points : [];
  const bars = history.ok && view !== "cumulative" ? history.data.bars : null;
  const key = keyId ? (keys?.find((k) => k.id === keyId) ?? null) : null;
  const subject = keyId ? `key “${key?.name ?? "unknown"}”` : null;
  return (
    <section
      data-testid="usage-chart"
      data-range={range}
      data-view={view}
      data-key={keyId ?? "all"}
      data-synced-points={points.length}
      aria-labelledby="usage-chart-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0">
          <h2 id="usage-chart-heading" className="text-base font-semibold text-slate-900">
            Usage over {option.long}
            {subject ? ` — ${subject}` : ""}
          </h2>
          <p className="text-sm text-slate-600">
            {view === "cumulative"
              ? "Calls so far in each month, as recorded by the hourly sync (UTC)."
              : `Calls made in each ${view === "hour" ? "hour" : "day"}, as recorded by the hourly sync (UTC).`}
          </p>
        </div>
        <div className="flex flex-wrap gap-2">
          {keys && keys.length > 0 ? <KeyPicker keys={keys} keyId={keyId} range={range} view={view} /> : null}
          <Picker label="Chart view" options={VIEW_OPTIONS} current={view} href={(v) => chartSearch(range, v, keyId)} />
          <Picker
            label="Chart range"
            options={RANGE_OPTIONS.map((o) => ({ ...o, ariaLabel: `Show ${o.long}` }))}
            current={range}
            href={(r) => chartSearch(r, view, keyId)}
          />
        </div>
      </div>
      <div className="mt-4">
        {!history.ok ? (
          <Message>
            Your usage history cannot be loaded right now. The live count above is still accurate; try reloading in a
            minute.
          </Message>
        ) : bars ? (
          <BarsBody bars={bars} live={live} outcomes={outcomes} emptyText={`No calls were synced in ${option.long}.`} />
        ) : (
          <CumulativeBody
            points={points}
            live={live}
            limit={limit}
            from={Date.parse(history.data.from)}
            to={Math.max(Date.parse(serverNow), live ? Date.parse(live.at) : 0)}
            hourly={range === "24h"}
            emptyText={`No calls${key ? ` with ${key.name}` : ""} were synced in ${option.long}.`}
            refused={refusedInRange(outcomes, Date.parse(history.data.from), Number.POSITIVE_INFINITY)}
            perHourHref={chartSearch(range, "hour", keyId)}
          />
        )}
      </div>
      <div className="mt-3 flex flex-wrap items-center justify-between gap-x-5 gap-y-2">
        <Legend
          showLive={live !== null}
          bars={bars !== null}
          refused={bars !== null && refusedInRange(outcomes, Date.parse(bars.from), Date.parse(bars.to)).total > 0}
        />
        {history.ok ? (
          // A plain link: the route answers an attachment, which a client-side navigation could not receive.
          // The CSV is the account's usage; the key picker does not apply to it, and the label says so.
          <a
            href={`/dashboard/usage.csv${chartSearch(range, view)}`}
            download
            className="rounded text-sm font-medium text-indigo-700 underline underline-offset-2 hover:text-indigo-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
          >
            {keyId ? "Download CSV (all keys)" : "Download CSV"}
          </a>
        ) : null}
      </div>
    </section>
  );
}

/**
 * All calls or one key's. A GET form, so it works without JavaScript (the button); with it, choosing submits at once.
 */
function KeyPicker({
  keys,
  keyId,
  range,
  view,
}: {
  keys: KeyUsageView[];
  keyId: string | null;
  range: UsageRange;
  view: UsageView;
}) {
  return (
    <Form method="get" preventScrollReset className="flex items-center gap-1.5">
      <input type="hidden" name="range" value={range} />
      {view === "cumulative" ? null : <input type="hidden" name="view" value={view} />}
      <label htmlFor="chart-key" className="sr-only">
        Chart calls of
      </label>
      <select
        id="chart-key"
        name="key"
        defaultValue={keyId ?? ""}
        key={keyId ?? ""}
        onChange={(event) => event.currentTarget.form?.requestSubmit()}
        className="max-w-[12rem] rounded-md border border-slate-300 bg-white py-1.5 pl-2 pr-7 text-sm text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
      >
        <option value="">All keys</option>
        {keys.map((k) => (
          <option key={k.id} value={k.id}>
            {k.name} ({k.prefix}…)
          </option>
        ))}
      </select>
      <noscript>
        <button type="submit" className="rounded border border-slate-300 px-2 py-1 text-sm">
          Show
        </button>
      </noscript>
    </Form>
  );
}

function Picker<T extends string>({
  label,
  options,
  current,
  href,
}: {
  label: string;
  options: { value: T; label: string; ariaLabel?: string }[];
  current: T;
  href: (value: T) => string;
}) {
  return (
    <nav aria-label={label} className="inline-flex rounded-md border border-slate-300 bg-slate-50 p-0.5">
      {options.map((o) => (
        <Link
          key={o.value}
          to={href(o.value)}
          preventScrollReset
          aria-current={o.value === current ? "page" : undefined}
          aria-label={o.ariaLabel}
          className={`whitespace-nowrap rounded px-2.5 py-1.5 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:px-3 ${
            o.value === current ? "bg-indigo-700 text-white shadow-sm" : "text-slate-700 hover:bg-white"
          }`}
        >
          {o.label}
        </Link>
      ))}
    </nav>
  );
}

function CumulativeBody({
  points,
  live,
  limit,
  from,
  to,
  hourly,
  emptyText,
  refused,
  perHourHref,
}: {
  points: ChartPoint[];
  live: LiveUsage | null;
  limit: number;
  from: number;
  to: number;
  hourly: boolean;
  emptyText: string;
  refused: { total: number; byStatus: Record<string, number> };
  perHourHref: string;
}) {
  const [showLimit, setShowLimit] = useState(false);
  const data = buildChartData(points, live, limit);
  if (data.length === 0) return <Message>{emptyText}</Message>;
  // The scale reaches the highest limit in force in the range, so a plan changed mid-range stays in view.
  const scaleLimit = highestLimit(data, limit);
  const scale = yScale(data, scaleLimit, { showLimit });
  // Whether the usage alone would leave the limit off the scale: only then is there a choice to offer.
  const farBelowLimit = !yScale(data, scaleLimit).limitOnScale;
  const stepped = limitChanges(data);
  const last = points.at(-1);
  const latest = live && (!last || Date.parse(live.at) > Date.parse(last.hour)) ? live.used : (last?.used ?? 0);
  return (
    <figure data-y-max={scale.ticks.at(-1)} data-limit-on-scale={scale.limitOnScale}>
      <p className="text-sm text-slate-700">
        <span className="font-medium tabular-nums text-slate-900">{formatCount(latest)}</span> calls this month ·{" "}
        <span data-testid="chart-percent" className="whitespace-nowrap">
          {formatPercent(latest, limit)}
        </span>{" "}
        of the {formatCount(limit)} limit
      </p>
      {/* Server-rendered, so the numbers are there for screen readers and before (or without) JavaScript. */}
      {stepped ? (
        <p data-testid="limit-changed" className="text-xs text-slate-600">
          The limit changed in this range; the dashed line shows the limit in force at each hour.
        </p>
      ) : null}
      <figcaption className="sr-only">
        {last
          ? `Latest synced value: ${formatCount(last.used)} calls at ${formatHour(Date.parse(last.hour))}. `
          : "No synced values in this range yet. "}
        {live ? `Now, not yet synced: ${formatCount(live.used)} calls. ` : ""}
        Monthly limit: {formatCount(limit)} calls ({formatPercent(latest, limit)} used).
      </figcaption>
      <div className={`relative mt-2 ${PLOT_BOX}`}>
        <Plot
          data={data}
          limit={scale.limitOnScale ? limit : null}
          limitSteps={scale.limitOnScale && stepped}
          yTicks={scale.ticks}
          from={from}
          to={to}
          hourly={hourly}
          kind="line"
        />
        {scale.limitOnScale ? null : (
          // Over the plot's top-left corner, where a running total that starts low leaves room.
          <p
            data-testid="limit-marker"
            className="pointer-events-none absolute left-[72px] top-0 rounded border border-red-200 bg-red-50 px-1.5 py-0.5 text-xs font-medium text-red-800"
          >
            Limit {formatCount(limit)} ↑<span className="sr-only"> (above this scale)</span>
          </p>
        )}
      </div>
      {farBelowLimit ? (
        <button
          type="button"
          aria-pressed={showLimit}
          onClick={() => setShowLimit((shown) => !shown)}
          className="mt-2 rounded border border-slate-300 bg-white px-2.5 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
        >
          {showLimit ? "Fit to usage" : "Show limit"}
        </button>
      ) : null}
      {refused.total > 0 ? (
        // The running total counts served calls only; refused ones are a separate series, told here and drawn per hour.
        <p data-testid="chart-refused" className="mt-2 text-sm text-rose-800">
          {formatCount(refused.total)} {refused.total === 1 ? "call was" : "calls were"} refused in this range (
          {describeRefused(refused.byStatus)}).{" "}
          <Link
            to={perHourHref}
            preventScrollReset
            className="font-medium text-indigo-700 underline underline-offset-2 hover:text-indigo-900"
          >
            See them per hour
          </Link>{" "}
          or in the{" "}
          <Link to="/logs?status=refused" className="font-medium text-indigo-700 underline underline-offset-2">
            request log
          </Link>
          .
        </p>
      ) : null}
      {points.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600">
          Your calls appear here as history after the next hourly sync; until then only the live value is shown.
        </p>
      ) : null}
      <ValuesTable
        caption="Calls so far this month, per synced hour (UTC)"
        columns={["Hour (UTC)", "Calls this month"]}
        rows={data.map((d) => [
          d.live ? `Now (${formatClock(d.t)}), not yet synced` : formatHour(d.t),
          formatCount((d.live ? d.pending : d.synced) ?? 0),
        ])}
      />
    </figure>
  );
}

function BarsBody({
  bars,
  live,
  outcomes,
  emptyText,
}: {
  bars: ChartBars;
  live: LiveUsage | null;
  outcomes: OutcomeHourView[];
  emptyText: string;
}) {
  const data = withRefusedBars(
    buildBarData(bars.buckets, live, bars.granularity),
    outcomes,
    bars.granularity,
    Date.parse(bars.from),
    Date.parse(bars.to),
  );
  if (data.length === 0) return <Message>{emptyText}</Message>;
  const scale = yScale(data, null, { stacked: true });
  const total = data.reduce((sum, d) => sum + (d.synced ?? 0) + (d.pending ?? 0), 0);
  const refused = data.reduce((sum, d) => sum + (d.refused ?? 0), 0);
  const unit = bars.granularity === "day" ? "day" : "hour";
  const label = (d: ChartDatum) => bucketLabel(d.start ?? d.t, bars.granularity);
  const bucketsByStart = new Map(bars.buckets.map((b) => [Date.parse(b.start), b]));
  return (
    <figure data-y-max={scale.ticks.at(-1)} data-bars={data.length}>
      <p className="text-sm text-slate-700">
        <span className="font-medium tabular-nums text-slate-900">{formatCount(total)}</span> calls from{" "}
        {bucketLabel(Date.parse(bars.from), bars.granularity)}
        {data.some((d) => d.pending) ? ", including the ones not yet synced" : ""}
        {refused > 0 ? (
          <>
            {" · "}
            <span data-testid="chart-refused" className="whitespace-nowrap text-rose-800">
              <span className="font-medium tabular-nums">{formatCount(refused)}</span> refused
            </span>
          </>
        ) : null}
      </p>
      <figcaption className="sr-only">
        {`Calls per ${unit}: ${data.length} ${unit}s with calls, ${formatCount(total)} in all${refused > 0 ? `, and ${formatCount(refused)} refused` : ""}. The table below lists each.`}
      </figcaption>
      <div className={`relative mt-2 ${PLOT_BOX}`}>
        <Plot
          data={data}
          limit={null}
          limitSteps={false}
          yTicks={scale.ticks}
          from={Date.parse(bars.from)}
          to={Date.parse(bars.to)}
          hourly={bars.granularity === "hour" && Date.parse(bars.to) - Date.parse(bars.from) <= 36 * 3_600_000}
          kind={bars.granularity}
        />
      </div>
      <ValuesTable
        caption={`Calls per ${unit} (UTC)`}
        columns={[unit === "day" ? "Day (UTC)" : "Hour (UTC)", `Calls in the ${unit}`, "Month so far", "Refused"]}
        rows={data.map((d) => {
          const bucket = d.start === undefined ? undefined : bucketsByStart.get(d.start);
          return [
            d.pending ? `${label(d)} (incl. ${formatCount(d.pending)} not yet synced)` : label(d),
            formatCount((d.synced ?? 0) + (d.pending ?? 0)),
            bucket ? formatCount(bucket.used + (d.pending ?? 0)) : live ? formatCount(live.used) : "—",
            d.refused ? `${formatCount(d.refused)} (${describeRefused(d.refusedByStatus ?? {})})` : "0",
          ];
        })}
      />
    </figure>
  );
}

function bucketLabel(ms: number, granularity: ChartGranularity): string {
  return granularity === "day" ? formatDate(new Date(ms)) : formatHour(ms);
}

/** The client-only canvas, behind a same-size placeholder until it has loaded. */
function Plot(props: UsageChartCanvasProps) {
  const hydrated = useHydrated();
  return hydrated ? (
    <Suspense fallback={<ChartPlaceholder />}>
      <UsageChartCanvas {...props} />
    </Suspense>
  ) : (
    <ChartPlaceholder />
  );
}

/**
 * Every value the chart draws, readable without a mouse: on a phone (tap the button), from the keyboard, and by
 * screen readers, for which the table is always there, visually hidden until shown (a collapsed <details> would hide
 * it from them too). Long ranges scroll inside it rather than lengthening the page.
 */
function ValuesTable({ caption, columns, rows }: { caption: string; columns: string[]; rows: string[][] }) {
  const [shown, setShown] = useState(false);
  const id = useId();
  return (
    <div className="mt-3 text-sm">
      <button
        type="button"
        aria-expanded={shown}
        aria-controls={id}
        onClick={() => setShown((value) => !value)}
        className="rounded font-medium text-indigo-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
      >
        {shown ? "Hide the values table" : "Show the values as a table"}
      </button>
      <div
        id={id}
        data-testid="usage-table-box"
        className={shown ? "mt-2 max-h-72 overflow-y-auto rounded border border-slate-200" : "sr-only"}
      >
        <table data-testid="usage-table" className="w-full text-left tabular-nums">
          <caption className="sr-only">{caption}</caption>
          <thead className="sticky top-0 bg-slate-50 text-slate-700">
            <tr>
              {columns.map((column) => (
                <th key={column} scope="col" className="px-2 py-1.5 font-medium">
                  {column}
                </th>
              ))}
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100 text-slate-800">
            {rows.map((row, i) => (
              <tr key={i}>
                {row.map((cell, j) =>
                  j === 0 ? (
                    <th key={j} scope="row" className="px-2 py-1 font-normal">
                      {cell}
                    </th>
                  ) : (
                    <td key={j} className="px-2 py-1">
                      {cell}
                    </td>
                  ),
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
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

function Legend({ showLive, bars, refused }: { showLive: boolean; bars: boolean; refused: boolean }) {
  return (
    <ul className="flex flex-wrap gap-x-5 gap-y-1 text-xs text-slate-700" aria-label="Chart legend">
      <li className="flex items-center gap-1.5">
        <span
          aria-hidden="true"
          className={bars ? "inline-block h-3 w-3 bg-indigo-700" : "inline-block h-0.5 w-5 bg-indigo-700"}
        />
        Synced hourly
      </li>
      {showLive ? (
        <li className="flex items-center gap-1.5">
          {bars ? (
            <span aria-hidden="true" className="inline-block h-3 w-3 bg-amber-600" />
          ) : (
            <span
              aria-hidden="true"
              className="inline-block h-3 w-3 rounded-full border-[3px] border-amber-700 bg-white"
            />
          )}
          Now — not yet synced
        </li>
      ) : null}
      {refused ? (
        <li className="flex items-center gap-1.5">
          <span aria-hidden="true" className="inline-block h-3 w-3 bg-rose-700" />
          Refused (400, 401, 404, 429, 503)
        </li>
      ) : null}
      {bars ? null : (
        <li className="flex items-center gap-1.5">
          <span aria-hidden="true" className="inline-block w-5 border-t-2 border-dashed border-red-700" />
          Monthly limit
        </li>
      )}
    </ul>
  );
}
