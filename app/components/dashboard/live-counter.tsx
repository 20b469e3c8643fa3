import { formatClock, formatCount, formatMonth, formatPercent, formatResetsAt } from "~/utils/format";
import type { LiveUsage } from "./types";
import type { LiveStatus } from "./use-live-usage";

export const WARNING_RATIO = 0.8;

export function usageLevel(usage: Pick<LiveUsage, "used" | "limit">): "ok" | "warning" | "exhausted" {
  if (usage.limit <= 0 || usage.used >= usage.limit) return "exhausted";
  return usage.used >= usage.limit * WARNING_RATIO ? "warning" : "ok";
}

const barColour = { ok: "bg-indigo-600", warning: "bg-amber-500", exhausted: "bg-red-600" } as const;

export function LiveCounter({ usage, status }: { usage: LiveUsage | null; status: LiveStatus }) {
  return (
    <section
      data-testid="live-counter"
      aria-labelledby="live-counter-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <div className="flex flex-wrap items-baseline justify-between gap-x-3 gap-y-1">
        <h2 id="live-counter-heading" className="text-sm font-semibold text-slate-700">
          {usage ? `Calls in ${formatMonth(usage.period)}` : "Calls this month"}
        </h2>
        <LiveStatusNote usage={usage} status={status} />
      </div>
      {usage ? <Counter usage={usage} /> : <Unavailable status={status} />}
    </section>
  );
}

function Counter({ usage }: { usage: LiveUsage }) {
  const level = usageLevel(usage);
  const ratio = usage.limit > 0 ? Math.min(1, usage.used / usage.limit) : 1;
  return (
    <>
      <p className="mt-2 flex flex-wrap items-baseline gap-x-2 tabular-nums">
        <span data-testid="live-used" className="text-4xl font-semibold tracking-tight text-slate-900">
          {formatCount(usage.used)}
        </span>
        <span className="text-lg text-slate-600">/ {formatCount(usage.limit)}</span>
        <span data-testid="live-percent" className="whitespace-nowrap text-sm text-slate-600">
          ({formatPercent(usage.used, usage.limit)})
        </span>
      </p>
      <div
        role="progressbar"
        aria-label="Share of this month's quota used"
        aria-valuemin={0}
        aria-valuemax={usage.limit}
        aria-valuenow={Math.min(usage.used, usage.limit)}
        aria-valuetext={`${formatCount(usage.used)} of ${formatCount(usage.limit)} calls`}
        className="mt-3 h-3 w-full overflow-hidden rounded-full bg-slate-200"
      >
        <div className={`h-full rounded-full ${barColour[level]}`} style={{ width: `${ratio * 100}%` }} />
      </div>
      <dl className="mt-3 grid grid-cols-1 gap-x-6 gap-y-1 text-sm text-slate-700 sm:grid-cols-2">
        <div className="flex gap-1">
          <dt>Remaining:</dt>
          <dd className="font-medium tabular-nums text-slate-900">{formatCount(usage.remaining)}</dd>
        </div>
        <div>
          {/* The date is in the text (a phone shows no hover title); the countdown runs from the server's read. */}
          <dt className="sr-only">Quota reset</dt>
          <dd data-testid="live-resets" className="text-slate-900">
            <time dateTime={usage.resetsAt}>{formatResetsAt(usage.resetsAt, usage.at)}</time>
          </dd>
        </div>
      </dl>
    </>
  );
}

function Unavailable({ status }: { status: LiveStatus }) {
  return (
    <p role="status" className="mt-3 rounded border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      {status === "signed-out"
        ? "Your session has ended. Reload the page to log in again."
        : "The live count cannot be read right now. While our usage store is unreachable, API calls get 503: they are not served and not counted. Your sheets, keys and history are safe. This retries every few seconds."}
    </p>
  );
}

function LiveStatusNote({ usage, status }: { usage: LiveUsage | null; status: LiveStatus }) {
  if (!usage) return null;
  // Announced politely only when the state changes, never on every count change.
  return (
    <p aria-live="polite" className="text-xs text-slate-600">
      {status === "ok" ? (
        <span className="inline-flex items-center gap-1.5">
          <span aria-hidden="true" className="inline-block h-2 w-2 rounded-full bg-emerald-600" />
          Live · updated {formatClock(Date.parse(usage.at))} UTC
        </span>
      ) : status === "stale" ? (
        <span className="text-amber-900">
          Could not refresh; showing the count from {formatClock(Date.parse(usage.at))} UTC. Retrying…
        </span>
      ) : (
        <span className="text-amber-900">Session ended; reload to see the latest count.</span>
      )}
    </p>
  );
}
