import type { Redis } from "@upstash/redis";
import { type Db, getBulkDb } from "~/utils/db.server";
import { REFRESH_SHEET_ROUTE_PATH } from "~/utils/endpoints";
import { type Env, getEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import { getRedis } from "~/utils/redis.server";
import { createSheet, MAX_CSV_BYTES, sheetNameFrom, SheetImportError } from "./csv-import.server";
import { parseSheetFile, replaceSheetData } from "./sheet-data.server";
import {
  fetchSheetSource,
  parseSourceUrl,
  SheetFetchError,
  type SheetFetchOptions,
  type SheetFetchPolicy,
} from "./sheet-fetch.server";
import {
  deleteSheetRefreshSchedule,
  type RefreshSchedule,
  type ScheduleClient,
  upsertSheetRefreshSchedule,
} from "./sheet-schedules.server";
import { deleteSheet } from "./sheets.server";

/**
 * Sheets that come from a URL: created by fetching it, refreshed by fetching it again (on their QStash schedule or
 * when the customer asks), and deleted together with their schedule. Free of HTTP routes: the /sheets page, the
 * refresh route, the admin CLI and the tests share these functions. docs/sheets.md says what customers see.
 */
export interface SheetSourceDeps {
  db: Db;
  redis: Redis;
  qstash: ScheduleClient;
  /** Where QStash sends each scheduled refresh: APP_URL + /api/cron/refresh-sheet. */
  refreshDestination: string;
  fetchPolicy: SheetFetchPolicy;
  /** Tests only: a DNS lookup and a trusted CA for the fetcher. */
  fetchOptions?: Pick<SheetFetchOptions, "lookup" | "ca">;
}

/** The fetcher's limits from the environment; the body limit is the upload's, so a URL sheet is no larger. */
export function sheetFetchPolicy(
  env: Pick<Env, "SHEET_FETCH_ALLOW_LOOPBACK" | "SHEET_FETCH_TIMEOUT_MS" | "SHEET_FETCH_IDLE_TIMEOUT_MS">,
): SheetFetchPolicy {
  return {
    allowLoopback: env.SHEET_FETCH_ALLOW_LOOPBACK === "1",
    maxBytes: MAX_CSV_BYTES,
    totalTimeoutMs: env.SHEET_FETCH_TIMEOUT_MS,
    idleTimeoutMs: env.SHEET_FETCH_IDLE_TIMEOUT_MS,
  };
}

/**
 * The app's own clients. The bulk pool: creating or replacing 100 000 rows outlasts a page request's statement
 * deadline.
 */
export function appSheetSourceDeps(): SheetSourceDeps {
  const env = getEnv();
  return {
    db: getBulkDb(),
    redis: getRedis(),
    qstash: getQstash(),
    refreshDestination: env.APP_URL + REFRESH_SHEET_ROUTE_PATH,
    fetchPolicy: sheetFetchPolicy(env),
  };
}

/** QStash could not take the schedule; nothing was kept, and the customer may try again. */
export class ScheduleUnavailableError extends Error {
  constructor(cause: unknown) {
    super("Refreshes cannot be scheduled right now; try again in a minute.", { cause });
    this.name = "ScheduleUnavailableError";
  }
}

export interface SheetSourceView {
  sheetId: string;
  url: string;
  schedule: RefreshSchedule;
  lastRefreshAt: Date | null;
  lastRefreshStatus: RefreshStatus | null;
  lastRefreshError: string | null;
  lastChangedAt: Date | null;
}

export type RefreshStatus = "updated" | "unchanged" | "failed";

const viewSelect = {
  sheetId: true,
  url: true,
  schedule: true,
  lastRefreshAt: true,
  lastRefreshStatus: true,
  lastRefreshError: true,
  lastChangedAt: true,
} as const;

/** The sources of a user's URL sheets, by sheet id (uploaded sheets have none). */
export async function listSheetSources(db: Db, userId: string): Promise<Map<string, SheetSourceView>> {
  const rows = await db.sheetSource.findMany({ where: { sheet: { userId } }, select: viewSelect });
  return new Map(rows.map((row) => [row.sheetId, row as SheetSourceView]));
}

export function getSheetSource(db: Db, userId: string, sheetId: string): Promise<SheetSourceView | null> {
  return db.sheetSource.findFirst({
    where: { sheetId, sheet: { userId } },
    select: viewSelect,
  }) as Promise<SheetSourceView | null>;
}

// By the URL's path (.xlsx, .csv) or else the content, as for an upload; a published Google Sheet is CSV.
function parseFetched(fetched: { url: string; bytes: Uint8Array }) {
  return parseSheetFile({ name: new URL(fetched.url).pathname, bytes: fetched.bytes });
}

/** A last path segment that reads as a name ("prices.csv" → "prices"), else the host. */
function nameFromUrl(url: URL): string {
  const segment = url.pathname.split("/").filter(Boolean).at(-1) ?? "";
  let last = segment;
  try {
    last = decodeURIComponent(segment);
  } catch {
    // A stray "%" that is no escape ("/100%.csv"): the segment as written is name enough.
  }
  return /\.(csv|txt|xlsx)$/i.test(last) ? last : url.hostname;
}

export interface CreatedUrlSheet {
  sheetId: string;
  rows: number;
  columns: string[];
  url: string;
  schedule: RefreshSchedule;
  scheduleId: string | null;
}

/**
 * Fetches `url`, creates the sheet from it, and schedules its refreshes. Throws SheetFetchError (refused or failed
 * fetch) or SheetImportError (not a sheet we can read) with a message for the customer, nothing created; throws
 * ScheduleUnavailableError when QStash would not take the schedule, the new sheet removed again.
 */
export async function createSheetFromUrl(
  deps: SheetSourceDeps,
  input: { userId: string; url: string; name?: string; schedule: RefreshSchedule },
): Promise<CreatedUrlSheet> {
  const url = parseSourceUrl(input.url, deps.fetchPolicy);
  const fetched = await fetchSheetSource(url.href, deps.fetchPolicy, deps.fetchOptions);
  if (fetched.notModified) throw new SheetFetchError("http-status", "The source answered 304 to its first fetch.");
  const parsed = await parseFetched(fetched);
  const created = await createSheet(deps.db, {
    userId: input.userId,
    name: sheetNameFrom(nameFromUrl(url), input.name),
    parsed,
  });
  const now = new Date();
  try {
    // The sheet's own data time, so a refresh can tell whether the rows are still the ones this source gave.
    const { dataUpdatedAt } = await deps.db.sheet.findUniqueOrThrow({
      where: { id: created.sheetId },
      select: { dataUpdatedAt: true },
    });
    await deps.db.sheetSource.create({
      data: {
        sheetId: created.sheetId,
        url: url.href,
        schedule: input.schedule,
        etag: fetched.etag,
        lastModified: fetched.lastModified,
        contentHash: fetched.contentHash,
        lastRefreshAt: now,
        lastRefreshStatus: "updated",
        lastChangedAt: dataUpdatedAt,
      },
    });
    let scheduleId: string | null = null;
    if (input.schedule !== "manual") {
      scheduleId = await upsertSheetRefreshSchedule(deps.qstash, {
        destination: deps.refreshDestination,
        sheetId: created.sheetId,
        schedule: input.schedule,
      }).catch((error: unknown) => {
        throw new ScheduleUnavailableError(error);
      });
      await deps.db.sheetSource.update({ where: { sheetId: created.sheetId }, data: { scheduleId } });
    }
    return { ...created, url: url.href, schedule: input.schedule, scheduleId };
  } catch (error) {
    // A URL sheet without its source record or its promised schedule would silently never refresh; the customer
    // is told and can create it again. The sheet was never shown to anyone, so removing it needs no cache bump.
    await deps.db.sheet.deleteMany({ where: { id: created.sheetId, userId: input.userId } }).catch(() => {});
    if (input.schedule !== "manual" && !(error instanceof ScheduleUnavailableError)) {
      await deleteSheetRefreshSchedule(deps.qstash, created.sheetId).catch(() => {});
    }
    throw error;
  }
}

export type RefreshOutcome =
  | { status: "updated"; sheetId: string; rows: number; version: number }
  | { status: "unchanged"; sheetId: string; reason: "not-modified" | "same-content" }
  | { status: "failed"; sheetId: string; error: string }
  /** No such sheet (deleted) or no source: nothing to refresh. */
  | { status: "missing"; sheetId: string };

/**
 * Fetches the sheet's source again and replaces its rows if they changed. The source's validators go along
 * (If-None-Match, If-Modified-Since), and a body with the same SHA-256 as the last one imported is not imported
 * again. A fetch or parse that fails keeps the rows as they are and records the error and the time. Errors of our
 * own stores (Postgres, Redis) are thrown, so a scheduled delivery is retried.
 * `userId` restricts the refresh to that owner's sheet (the page); the scheduled route passes none.
 */
export async function refreshSheetSource(
  deps: SheetSourceDeps,
  input: { sheetId: string; userId?: string },
  now: () => Date = () => new Date(),
): Promise<RefreshOutcome> {
  const { sheetId } = input;
  const source = await deps.db.sheetSource.findFirst({
    where: { sheetId, ...(input.userId && { sheet: { userId: input.userId } }) },
    select: {
      url: true,
      etag: true,
      lastModified: true,
      contentHash: true,
      lastChangedAt: true,
      sheet: { select: { userId: true, dataUpdatedAt: true } },
    },
  });
  if (!source) return { status: "missing", sheetId };
  // Rows replaced by other means (a file through "Replace data" or sheet:replace) are not what the source holds,
  // even when the source itself has not changed: then its validators and hash say nothing, and it is imported again.
  const rowsFromSource = source.lastChangedAt?.getTime() === source.sheet.dataUpdatedAt.getTime();

  let outcome: RefreshOutcome;
  const record: {
    etag?: string | null;
    lastModified?: string | null;
    contentHash?: string;
    lastChangedAt?: Date;
  } = {};
  try {
    const fetched = await fetchSheetSource(source.url, deps.fetchPolicy, {
      ...deps.fetchOptions,
      ...(rowsFromSource && { etag: source.etag, lastModified: source.lastModified }),
    });
    if (fetched.notModified) {
      outcome = { status: "unchanged", sheetId, reason: "not-modified" };
    } else if (rowsFromSource && fetched.contentHash === source.contentHash) {
      // Same bytes from a server without validators (or new validators on old content): nothing to import.
      Object.assign(record, { etag: fetched.etag, lastModified: fetched.lastModified });
      outcome = { status: "unchanged", sheetId, reason: "same-content" };
    } else {
      const parsed = await parseFetched(fetched);
      const replaced = await replaceSheetData(deps, { sheetId, userId: source.sheet.userId, parsed });
      if (!replaced) return { status: "missing", sheetId };
      Object.assign(record, {
        etag: fetched.etag,
        lastModified: fetched.lastModified,
        contentHash: fetched.contentHash,
        lastChangedAt: replaced.dataUpdatedAt,
      });
      outcome = { status: "updated", sheetId, rows: replaced.rows, version: replaced.version };
    }
  } catch (error) {
    if (!(error instanceof SheetFetchError) && !(error instanceof SheetImportError)) throw error;
    outcome = { status: "failed", sheetId, error: error.message };
  }

  // updateMany: the sheet may have been deleted while its source was being fetched; then there is nothing to record.
  await deps.db.sheetSource.updateMany({
    where: { sheetId },
    data: {
      ...record,
      lastRefreshAt: now(),
      lastRefreshStatus: outcome.status,
      lastRefreshError: outcome.status === "failed" ? outcome.error : null,
    },
  });
  return outcome;
}

/**
 * Changes how often the sheet refreshes: creates or updates its QStash schedule, or removes it for manual. QStash
 * first, so a failure there changes nothing (ScheduleUnavailableError); false when the user has no such URL sheet.
 */
export async function setRefreshSchedule(
  deps: Pick<SheetSourceDeps, "db" | "qstash" | "refreshDestination">,
  input: { userId: string; sheetId: string; schedule: RefreshSchedule },
): Promise<boolean> {
  const { sheetId, schedule } = input;
  const source = await deps.db.sheetSource.findFirst({
    where: { sheetId, sheet: { userId: input.userId } },
    select: { sheetId: true },
  });
  if (!source) return false;
  let scheduleId: string | null = null;
  try {
    if (schedule === "manual") await deleteSheetRefreshSchedule(deps.qstash, sheetId);
    else {
      scheduleId = await upsertSheetRefreshSchedule(deps.qstash, {
        destination: deps.refreshDestination,
        sheetId,
        schedule,
      });
    }
  } catch (error) {
    throw new ScheduleUnavailableError(error);
  }
  await deps.db.sheetSource.updateMany({ where: { sheetId }, data: { schedule, scheduleId } });
  return true;
}

/**
 * Deletes a sheet, removing its refresh schedule from QStash first: with QStash unreachable nothing is deleted
 * (ScheduleUnavailableError), rather than a schedule left calling for a sheet that is gone. (Should one be left
 * anyway, the refresh route removes the schedule of a sheet it cannot find.) False when the user has no such sheet.
 */
export async function deleteSheetWithSource(
  deps: Pick<SheetSourceDeps, "db" | "redis" | "qstash">,
  input: { userId: string; sheetId: string },
): Promise<boolean> {
  const source = await deps.db.sheetSource.findFirst({
    where: { sheetId: input.sheetId, sheet: { userId: input.userId } },
    select: { sheetId: true },
  });
  if (source) {
    try {
      await deleteSheetRefreshSchedule(deps.qstash, input.sheetId);
    } catch (error) {
      throw new ScheduleUnavailableError(error);
    }
  }
  return deleteSheet(deps.redis, deps.db, input.userId, input.sheetId);
}

/**
 * Removes the QStash schedule of every URL sheet `userId` owns, for account deletion: call it before the user's
 * rows go (their sheets' ids are how the schedules are found). Every source is tried, manual ones included (a
 * schedule created just before a crash may not be recorded); throws after trying all if any removal failed, so the
 * caller can stop and retry. Returns how many sheets' schedules were removed or already gone.
 */
export async function removeSheetSchedules(
  deps: Pick<SheetSourceDeps, "db" | "qstash">,
  userId: string,
): Promise<number> {
  const sources = await deps.db.sheetSource.findMany({ where: { sheet: { userId } }, select: { sheetId: true } });
  const results = await Promise.allSettled(
    sources.map(({ sheetId }) => deleteSheetRefreshSchedule(deps.qstash, sheetId)),
  );
  const failed = results.filter((result) => result.status === "rejected");
  if (failed.length > 0) throw new ScheduleUnavailableError((failed[0] as PromiseRejectedResult).reason);
  return sources.length;
}

/**
 * Creates (or updates in place) the QStash schedule of every hourly or daily URL sheet, from what Postgres records:
 * after moving to another QStash project, after `APP_URL` changed (the destination is part of each schedule), or
 * after restarting `npm run dev` (the stand-in keeps schedules in memory). Admin CLI `sheet:reschedule`.
 */
export async function restoreSheetSchedules(
  deps: Pick<SheetSourceDeps, "db" | "qstash" | "refreshDestination">,
): Promise<{ restored: number; failed: { sheetId: string; error: string }[] }> {
  const sources = await deps.db.sheetSource.findMany({
    where: { schedule: { in: ["hourly", "daily"] } },
    select: { sheetId: true, schedule: true },
  });
  const failed: { sheetId: string; error: string }[] = [];
  let restored = 0;
  for (const { sheetId, schedule } of sources) {
    try {
      const scheduleId = await upsertSheetRefreshSchedule(deps.qstash, {
        destination: deps.refreshDestination,
        sheetId,
        schedule: schedule as "hourly" | "daily",
      });
      await deps.db.sheetSource.updateMany({ where: { sheetId }, data: { scheduleId } });
      restored++;
    } catch (error) {
      failed.push({ sheetId, error: (error as Error).message.split("\n")[0] });
    }
  }
  return { restored, failed };
}
