import { createHash } from "node:crypto";
import type { Client } from "@upstash/qstash";

/** QStash calls the usage sync at the top of every hour (QStash crons are UTC). */
export const HOURLY_CRON = "0 * * * *";

/**
 * One id per destination: staging and production may share a QStash account, and each must update its own
 * schedule rather than the other's. QStash accepts letters, digits, `-` and `_` in schedule ids.
 */
export function usageSyncScheduleId(destination: string): string {
  return `usage-sync-${createHash("sha256").update(destination).digest("hex").slice(0, 16)}`;
}

/**
 * Creates or updates the hourly schedule for `destination` and removes any other schedule aimed at it (one made
 * by hand in the console, or by an older version of this script), so a redeploy never doubles the syncs.
 * Returns the schedule id.
 */
export async function ensureHourlySchedule(client: Client, destination: string): Promise<string> {
  const scheduleId = usageSyncScheduleId(destination);
  // Created (or updated in place, since the id is fixed) before duplicates go, so the sync is never unscheduled.
  await client.schedules.create({
    destination,
    cron: HOURLY_CRON,
    scheduleId,
    // An empty JSON object: a fresh run from the start of the keyspace, and a body every JSON parser accepts.
    body: "{}",
    headers: { "Content-Type": "application/json" },
    retries: 3,
  });
  const schedules = await client.schedules.list();
  for (const schedule of schedules) {
    if (schedule.destination === destination && schedule.scheduleId !== scheduleId) {
      await client.schedules.delete(schedule.scheduleId);
    }
  }
  return scheduleId;
}
