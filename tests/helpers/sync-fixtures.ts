import { Redis as IORedis } from "ioredis";
import { getDb } from "~/utils/db.server";
import { quotaKey } from "~/utils/period";
import { TEST_REDIS_URL } from "../setup/test-env";

/** Seeding and reading for the sync tests: users in Postgres, counters straight into this file's Redis database. */
export function syncFixtures() {
  const db = getDb();
  const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });

  return {
    db,
    raw,
    async reset() {
      await raw.flushdb();
      await db.$executeRaw`TRUNCATE "UsageSnapshot", "SyncRun", "UsagePeriodFinal"`;
      await db.$executeRaw`DELETE FROM "User"`;
    },
    async createUsers(count: number, prefix = "user"): Promise<string[]> {
      const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(6, "0")}`);
      for (let start = 0; start < ids.length; start += 5000) {
        await db.user.createMany({
          data: ids.slice(start, start + 5000).map((id) => ({ id, email: `${id}@example.test`, passwordHash: "x" })),
        });
      }
      return ids;
    },
    async setCounts(period: string, counts: Map<string, number> | Record<string, number>) {
      const entries = counts instanceof Map ? [...counts] : Object.entries(counts);
      for (let start = 0; start < entries.length; start += 5000) {
        const args = entries
          .slice(start, start + 5000)
          .flatMap(([userId, used]) => [quotaKey(userId, period), String(used)]);
        if (args.length > 0) await raw.mset(...args);
      }
    },
    /** Every snapshot as `userId|hour ISO|period → used`, for exact comparisons. */
    async snapshots(): Promise<Map<string, number>> {
      const rows = await db.usageSnapshot.findMany({ select: { userId: true, hour: true, period: true, used: true } });
      return new Map(rows.map((row) => [`${row.userId}|${row.hour.toISOString()}|${row.period}`, row.used]));
    },
    /**
     * Makes the `nth` snapshot row written from now on fail its statement, once (sequences do not roll back, so a
     * retry passes): a Postgres outage in the middle of a run. Returns the function that removes the trap.
     */
    async failSnapshotInsertOnce(nth: number): Promise<() => Promise<void>> {
      await db.$executeRawUnsafe(`CREATE SEQUENCE sync_rows_seen`);
      await db.$executeRawUnsafe(`
        CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('sync_rows_seen') = ${Number(nth)} THEN RAISE EXCEPTION 'simulated outage'; END IF;
          RETURN NEW;
        END $$`);
      await db.$executeRawUnsafe(
        `CREATE TRIGGER fail_once BEFORE INSERT ON "UsageSnapshot" FOR EACH ROW EXECUTE FUNCTION fail_once()`,
      );
      return async () => {
        await db.$executeRawUnsafe(`DROP TRIGGER IF EXISTS fail_once ON "UsageSnapshot"`);
        await db.$executeRawUnsafe(`DROP FUNCTION IF EXISTS fail_once()`);
        await db.$executeRawUnsafe(`DROP SEQUENCE IF EXISTS sync_rows_seen`);
      };
    },
    snapshotCount: () => db.usageSnapshot.count(),
    runs: () => db.syncRun.findMany({ orderBy: { startedAt: "asc" } }),
    close: () => raw.disconnect(),
  };
}

/** The snapshot map `snapshots()` should return when every user in `counts` was synced at `hour`. */
export function expectedSnapshots(counts: Map<string, number> | Record<string, number>, hour: Date, period: string) {
  const entries = counts instanceof Map ? [...counts] : Object.entries(counts);
  return new Map(entries.map(([userId, used]) => [`${userId}|${hour.toISOString()}|${period}`, used]));
}
