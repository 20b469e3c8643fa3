import { useEffect, useRef, useState } from "react";
import type { LiveUsage } from "./types";

export const LIVE_USAGE_PATH = "/dashboard/live";
export const LIVE_REFRESH_MS = 5000;

/**
 * ok: the value is fresh; stale: the last refresh failed and the value shown is older (polling continues);
 * signed-out: the session ended, so polling stops instead of hammering a 401.
 */
export type LiveStatus = "ok" | "stale" | "signed-out";

export interface LiveUsageState {
  usage: LiveUsage | null;
  status: LiveStatus;
}

function isLiveUsage(value: unknown): value is LiveUsage {
  const v = value as Partial<LiveUsage> | null;
  return typeof v?.used === "number" && typeof v.limit === "number" && typeof v.at === "string";
}

/**
 * The live count, refreshed every few seconds from the live resource route. Plain fetch rather than a Remix fetcher:
 * a failed poll must only mark the value stale, never throw into the route's error boundary, and a 401 must not be
 * followed to the log-in page. One request is in flight at a time (the next is scheduled when one settles), polling
 * stops while the tab is hidden and refreshes at once when it is shown again. The last good value is kept while a
 * refresh runs or fails, so the counter never blanks.
 */
export function useLiveUsage(initial: LiveUsage | null, intervalMs = LIVE_REFRESH_MS): LiveUsageState {
  const [state, setState] = useState<LiveUsageState>({ usage: initial, status: initial ? "ok" : "stale" });

  // A loader re-run (changing the range) brings a server value; take it only if it is newer than what polling has.
  const latestInitial = useRef(initial);
  useEffect(() => {
    if (!initial || initial === latestInitial.current) return;
    latestInitial.current = initial;
    setState((current) =>
      current.usage && current.usage.at >= initial.at ? current : { usage: initial, status: "ok" },
    );
  }, [initial]);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | undefined;
    let stopped = false;

    const schedule = () => {
      clearTimeout(timer);
      if (!stopped && !document.hidden) timer = setTimeout(refresh, intervalMs);
    };

    async function refresh() {
      clearTimeout(timer);
      controller?.abort();
      const current = new AbortController();
      controller = current;
      try {
        const response = await fetch(LIVE_USAGE_PATH, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
          signal: current.signal,
        });
        if (response.status === 401) {
          stopped = true;
          setState((s) => ({ ...s, status: "signed-out" }));
          return;
        }
        const body: unknown = response.ok ? await response.json() : null;
        if (!isLiveUsage(body)) throw new Error(`live usage answered ${response.status}`);
        setState((s) => (s.usage && s.usage.at > body.at ? s : { usage: body, status: "ok" }));
      } catch {
        if (current.signal.aborted) return;
        setState((s) => (s.status === "stale" ? s : { ...s, status: "stale" }));
      } finally {
        if (controller === current) {
          controller = undefined;
          schedule();
        }
      }
    }

    const onVisibilityChange = () => {
      if (document.hidden) {
        clearTimeout(timer);
        controller?.abort();
      } else {
        void refresh();
      }
    };

    document.addEventListener("visibilitychange", onVisibilityChange);
    schedule();
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller?.abort();
      document.removeEventListener("visibilitychange", onVisibilityChange);
    };
  }, [intervalMs]);

  return state;
}
