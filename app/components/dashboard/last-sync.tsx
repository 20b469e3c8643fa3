import { useSyncExternalStore } from "react";
import { formatClock, formatRelative } from "~/utils/format";
import type { Part, SyncRunView } from "./types";

const TICK_MS = 30_000;

function subscribeToClock(onTick: () => void): () => void {
  const timer = setInterval(onTick, TICK_MS);
  return () => clearInterval(timer);
}

/**
 * "now" is the server's clock while hydrating, so the first client render matches the server's HTML, then the
 * browser's clock, refreshed every half minute so "12 minutes ago" keeps ageing on a page left open. The browser's
 * time is read in whole ticks: React needs the same snapshot between ticks, and the text only shows minutes.
 */
function useNow(serverNow: string): number {
  return useSyncExternalStore(
    subscribeToClock,
    () => Math.floor(Date.now() / TICK_MS) * TICK_MS,
    () => Date.parse(serverNow),
  );
}

export function LastSync({ run, serverNow }: { run: Part<SyncRunView | null>; serverNow: string }) {
  const now = useNow(serverNow);
  return (
    <section
      data-testid="last-sync"
      aria-labelledby="last-sync-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
      data-status={run.ok ? (run.data?.status ?? "never") : "unavailable"}
      data-finished-at={run.ok ? (run.data?.finishedAt ?? "") : ""}
    >
      <h2 id="last-sync-heading" className="text-sm font-semibold text-slate-700">
        History last synced
      </h2>
      <LastSyncBody run={run} now={now} />
    </section>
  );
}

/** "08:12 UTC (3 minutes ago)": plain text with the exact time in it, since a hover title never shows on a phone. */
function When({ iso, now }: { iso: string; now: number }) {
  return (
    <time dateTime={iso}>
      {formatClock(Date.parse(iso))} UTC ({formatRelative(iso, now)})
    </time>
  );
}

function LastSyncBody({ run, now }: { run: Part<SyncRunView | null>; now: number }) {
  if (!run.ok) {
    return <p className="mt-2 text-sm text-slate-700">Sync status is unavailable right now.</p>;
  }
  const last = run.data;
  if (!last) {
    return (
      <>
        <p className="mt-2 text-2xl font-semibold text-slate-900">Never</p>
        <p className="mt-1 text-sm text-slate-600">
          Usage is copied into your history every hour; the chart fills in then.
        </p>
      </>
    );
  }
  if (last.status === "failed") {
    return (
      <>
        <p className="mt-2 text-lg font-semibold text-red-800">
          Failed <When iso={last.finishedAt ?? last.startedAt} now={now} />
        </p>
        <p className="mt-1 text-sm text-slate-700">
          Your live count is unaffected; the chart may miss the latest hour until the next sync succeeds.
        </p>
      </>
    );
  }
  if (last.status === "running" || last.status === "continued" || !last.finishedAt) {
    return (
      <>
        <p className="mt-2 text-lg font-semibold text-slate-900">In progress</p>
        <p className="mt-1 text-sm text-slate-600">
          Started <When iso={last.startedAt} now={now} />.
        </p>
      </>
    );
  }
  return (
    <>
      <p className="mt-2 text-lg font-semibold text-slate-900">
        <When iso={last.finishedAt} now={now} />
      </p>
      {/* One caption for both freshness clocks: the history ends at the last sync, the live count does not. */}
      <p className="mt-1 text-sm text-slate-600">
        The chart's history runs to this sync; calls made since then are counted live and drawn as “now, not yet synced”
        until the next hourly sync.
      </p>
    </>
  );
}
