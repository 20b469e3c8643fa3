import { createHash } from "node:crypto";
import { withDeadline } from "~/utils/deadline.server";
import type { Client } from "@upstash/qstash";

/**
 * The QStash schedules that refresh URL-sourced sheets: one per sheet whose customer picked hourly or daily, calling
 * `POST /api/cron/refresh-sheet` with `{"sheetId": …}`, signed like every QStash delivery. Manual sheets have none.
 */
export const REFRESH_SCHEDULES = ["hourly", "daily", "manual"] as const;
export type RefreshSchedule = (typeof REFRESH_SCHEDULES)[number];

export function isRefreshSchedule(value: unknown): value is RefreshSchedule {
  return typeof value === "string" && (REFRESH_SCHEDULES as readonly string[]).includes(value);
}

/**
 * The longest a page (or the CLI) waits on QStash to change a schedule. The SDK's own requests have no deadline;
 * past this one the call is abandoned and reported as QStash being unavailable. A late success is harmless: a
 * schedule that outlives its sheet is removed by the refresh route the first time it fires.
 */
export const SCHEDULE_DEADLINE_MS = 5000;

const withQstashDeadline = <T>(work: Promise<T>) =>
  withDeadline(work, SCHEDULE_DEADLINE_MS, `QStash did not answer within ${SCHEDULE_DEADLINE_MS} ms`);

/** The schedules API is all this module needs of the client; tests pass the real Client aimed at the stand-in. */
export type ScheduleClient = Pick<Client, "schedules">;

/**
 * Fixed by the sheet id, so creating it again updates it in place (QStash upserts by id) and deleting it needs no
 * lookup: a schedule can be removed even when the row that recorded its id is gone. Cuids are letters and digits,
 * which QStash accepts in ids.
 */
export function sheetRefreshScheduleId(sheetId: string): string {
  return `sheet-refresh-${sheetId}`;
}

/**
 * The cron of a schedule: every hour, or once a day, at a minute (and for daily an hour, UTC) derived from the sheet
 * id, so a thousand sheets do not all fetch their sources (and write their rows) at the top of the same hour.
 */
export function refreshCron(sheetId: string, schedule: Exclude<RefreshSchedule, "manual">): string {
  const spread = createHash("sha256").update(sheetId).digest().readUInt32BE(0);
  const minute = spread % 60;
  if (schedule === "hourly") return `${minute} * * * *`;
  return `${minute} ${Math.floor(spread / 60) % 24} * * *`;
}

/**
 * Creates or updates the sheet's schedule and returns its id. Retries are QStash's (3): a refresh that failed for
 * a reason of ours (503) is tried again, while a source that failed is recorded and answered 200, since the next
 * scheduled run tries it anyway.
 */
export async function upsertSheetRefreshSchedule(
  client: ScheduleClient,
  input: { destination: string; sheetId: string; schedule: Exclude<RefreshSchedule, "manual"> },
): Promise<string> {
  const scheduleId = sheetRefreshScheduleId(input.sheetId);
  await withQstashDeadline(
    client.schedules.create({
      destination: input.destination,
      scheduleId,
      cron: refreshCron(input.sheetId, input.schedule),
      body: JSON.stringify({ sheetId: input.sheetId }),
      headers: { "Content-Type": "application/json" },
      retries: 3,
    }),
  );
  return scheduleId;
}

/** Removes the sheet's schedule; one that is already gone is not an error (the removal is retried by callers). */
export async function deleteSheetRefreshSchedule(client: ScheduleClient, sheetId: string): Promise<void> {
  try {
    await withQstashDeadline(client.schedules.delete(sheetRefreshScheduleId(sheetId)));
  } catch (error) {
    if ((error as { status?: number }).status === 404) return;
    throw error;
  }
}
