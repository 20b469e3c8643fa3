import { data, redirect } from "@remix-run/node";
import type { Redis } from "@upstash/redis";
import { admitSheetFetch, MAX_SHEET_FETCHES, SHEET_FETCH_WINDOW_SECONDS } from "~/models/action-limits.server";
import { SheetImportError } from "~/models/csv-import.server";
import { SheetFetchError } from "~/models/sheet-fetch.server";
import { isRefreshSchedule } from "~/models/sheet-schedules.server";
import {
  appSheetSourceDeps,
  createSheetFromUrl,
  refreshSheetSource,
  ScheduleUnavailableError,
  setRefreshSchedule,
  type SheetSourceView,
} from "~/models/sheet-sources.server";
import { isDatabaseUnavailable } from "~/utils/database-outage.server";
import { formatDateTime } from "~/utils/format";

/**
 * The /sheets page's URL-source forms (create from a URL, refresh now, change the schedule), beside the route so
 * the route stays a dispatcher: each returns a redirect or the form error to show. Errors carry which form they
 * belong to, so an upload's error box never shows a URL's error.
 */
export const URL_SOURCE_INTENTS = ["create-from-url", "refresh", "set-schedule"] as const;
type UrlSourceIntent = (typeof URL_SOURCE_INTENTS)[number];

export function isUrlSourceIntent(value: unknown): value is UrlSourceIntent {
  return typeof value === "string" && (URL_SOURCE_INTENTS as readonly string[]).includes(value);
}

export type UrlSourceActionData = { urlError: string } | { sheetError: { sheetId: string; message: string } };

const SCHEDULE_CHOICE = "Choose hourly, daily or manual.";

export async function handleUrlSourceIntent(intent: UrlSourceIntent, form: FormData, userId: string) {
  const deps = appSheetSourceDeps();
  const schedule = form.get("schedule");
  if (intent !== "set-schedule") {
    const refused = await refuseOverFetchLimit(deps.redis, userId);
    if (refused) {
      return intent === "create-from-url"
        ? data<UrlSourceActionData>({ urlError: refused.message }, refused.init)
        : data<UrlSourceActionData>(
            { sheetError: { sheetId: String(form.get("sheetId") ?? ""), message: refused.message } },
            refused.init,
          );
    }
  }
  if (intent === "create-from-url") {
    if (!isRefreshSchedule(schedule)) return data<UrlSourceActionData>({ urlError: SCHEDULE_CHOICE }, { status: 400 });
    try {
      const { sheetId } = await createSheetFromUrl(deps, {
        userId,
        url: String(form.get("url") ?? ""),
        name: String(form.get("name") ?? ""),
        schedule,
      });
      return redirect(`/sheets?preview=${sheetId}&imported=1`);
    } catch (error) {
      const failure = failureOf(error);
      return data<UrlSourceActionData>({ urlError: failure.message }, failure.init);
    }
  }

  const sheetId = String(form.get("sheetId") ?? "");
  const sheetError = (message: string, init: ResponseInit) =>
    data<UrlSourceActionData>({ sheetError: { sheetId, message } }, init);
  try {
    if (intent === "refresh") {
      // A source that fails is recorded on the sheet and shown there, like a scheduled refresh's failure.
      const outcome = await refreshSheetSource(deps, { sheetId, userId });
      if (outcome.status === "missing") return sheetError("This sheet has no source URL to refresh.", { status: 404 });
      return redirect(`/sheets#sheet-${sheetId}`);
    }
    if (!isRefreshSchedule(schedule)) return sheetError(SCHEDULE_CHOICE, { status: 400 });
    const changed = await setRefreshSchedule(deps, { userId, sheetId, schedule });
    if (!changed) return sheetError("This sheet has no source URL to schedule.", { status: 404 });
    return redirect(`/sheets#sheet-${sheetId}`);
  } catch (error) {
    const failure = failureOf(error);
    return sheetError(failure.message, failure.init);
  }
}

/** Each fetch by hand is up to 10 MB and a rewrite of the rows: a held-down button must not become a stream. */
async function refuseOverFetchLimit(
  redis: Redis,
  userId: string,
): Promise<{ message: string; init: ResponseInit } | null> {
  let admission;
  try {
    admission = await admitSheetFetch(redis, userId);
  } catch (error) {
    console.error("sheets: the URL fetch limit (Redis) could not be read:", (error as Error).message);
    return {
      message: "We can't fetch sheets right now; try again in a minute.",
      init: { status: 503, headers: { "Retry-After": "60" } },
    };
  }
  if (admission.admitted) return null;
  const minutes = Math.ceil(admission.retryAfterSeconds / 60);
  return {
    message: `That is ${MAX_SHEET_FETCHES} fetches from URLs in ${SHEET_FETCH_WINDOW_SECONDS / 60} minutes; try again in ${minutes} minute${minutes === 1 ? "" : "s"}. Scheduled refreshes go on.`,
    init: { status: 429, headers: { "Retry-After": String(admission.retryAfterSeconds) } },
  };
}

function failureOf(error: unknown): { message: string; init: ResponseInit } {
  if (error instanceof SheetFetchError) return { message: error.message, init: { status: 400 } };
  if (error instanceof SheetImportError) return { message: error.message, init: { status: error.status } };
  if (error instanceof ScheduleUnavailableError) {
    console.error("sheets: QStash refused a schedule change:", (error.cause as Error | undefined)?.message);
    return { message: error.message, init: { status: 503, headers: { "Retry-After": "60" } } };
  }
  // Postgres down: the page's own outage answer. Anything else of ours (Redis, which a replacement must tell the
  // API's caches about): the rows are as they were, and the customer can try again.
  if (isDatabaseUnavailable(error)) throw error;
  console.error("sheets: URL source action failed:", (error as Error).message?.split("\n")[0]);
  return {
    message: "We can't do that right now; the sheet is unchanged. Try again in a minute.",
    init: { status: 503, headers: { "Retry-After": "60" } },
  };
}

/** What the page shows of a sheet's source: plain strings, dates already formatted (the page renders in UTC). */
export interface SheetSourceSummary {
  url: string;
  schedule: SheetSourceView["schedule"];
  lastRefreshAt: string | null;
  lastRefreshStatus: SheetSourceView["lastRefreshStatus"];
  lastRefreshError: string | null;
  lastChangedAt: string | null;
}

export function summarizeSource(source: SheetSourceView): SheetSourceSummary {
  return {
    url: source.url,
    schedule: source.schedule,
    lastRefreshAt: source.lastRefreshAt ? formatDateTime(source.lastRefreshAt) : null,
    lastRefreshStatus: source.lastRefreshStatus,
    lastRefreshError: source.lastRefreshError,
    lastChangedAt: source.lastChangedAt ? formatDateTime(source.lastChangedAt) : null,
  };
}
