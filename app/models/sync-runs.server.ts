import type { Db } from "~/utils/db.server";

export interface LastSyncRun {
  id: string;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
  users: number;
  error: string | null;
}

/**
 * The latest run that reached an end, succeeded or failed, for the dashboard's "last synced" line. A run still in
 * progress (or handed over to a continuation) is not "the last sync" yet: showing it would flash an unfinished
 * count every hour.
 */
export function getLastSyncRun(db: Db): Promise<LastSyncRun | null> {
  return db.syncRun.findFirst({
    where: { status: { in: ["succeeded", "failed"] }, finishedAt: { not: null } },
    orderBy: { finishedAt: "desc" },
    select: { id: true, status: true, startedAt: true, finishedAt: true, users: true, error: true },
  });
}
