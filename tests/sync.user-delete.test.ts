import pg from "pg";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { getEnv } from "~/utils/env.server";
import { createSyncRedis } from "~/utils/redis.server";
import { syncFixtures } from "./helpers/sync-fixtures";

/**
 * Snapshots name their user without a foreign key (docs/decisions/0008): triggers and an advisory lock keep the
 * rule. When a user's deletion commits, none of their snapshots remain, and no snapshot names a missing user — also
 * while a sync is writing that user's snapshot.
 */
const fx = syncFixtures();
const { db } = fx;
const env = getEnv();
const redis = () => createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
const now = new Date("2026-11-15T12:00:00Z");

afterAll(() => fx.close());
beforeEach(() => fx.reset());
afterEach(async () => {
  await db.$executeRawUnsafe(`DROP TRIGGER IF EXISTS slow_for_victim ON "UsageSnapshot"`);
  await db.$executeRawUnsafe(`DROP FUNCTION IF EXISTS slow_for_victim()`);
});

const orphans = async () =>
  Number(
    (
      await db.$queryRaw<{ n: bigint }[]>`
        SELECT count(*) AS n FROM "UsageSnapshot" s WHERE NOT EXISTS (SELECT FROM "User" u WHERE u.id = s."userId")`
    )[0].n,
  );

describe("snapshots and user deletion", () => {
  it("deleting a user deletes their snapshots; a snapshot of a missing user is refused", async () => {
    const [alice, bob] = await fx.createUsers(2);
    await fx.setCounts("2026-11", { [alice]: 5, [bob]: 6 });
    await syncUsageSnapshots({ redis: redis(), db }, { now });

    await db.user.delete({ where: { id: alice } });
    expect([...(await fx.snapshots()).keys()].map((key) => key.split("|")[0])).toEqual([bob]);

    await expect(
      db.usageSnapshot.create({ data: { userId: "nobody", period: "2026-11", hour: now, used: 1 } }),
    ).rejects.toThrow(/Foreign key constraint violated on the constraint: `UsageSnapshot_userId_fkey`/);
    // The sync's writer skips the insert trigger's check for its own INSERT only, not for what follows it.
    await expect(
      db.$transaction([
        db.$queryRaw`SELECT upsert_usage_snapshots(${bob}, '2026-11', '2026-11-15 13:00:00', '7')`,
        db.usageSnapshot.create({ data: { userId: "nobody", period: "2026-11", hour: now, used: 1 } }),
      ]),
    ).rejects.toThrow(/Foreign key constraint violated on the constraint: `UsageSnapshot_userId_fkey`/);
    await expect(db.usageSnapshot.updateMany({ where: { userId: bob }, data: { userId: alice } })).rejects.toThrow(
      /`UsageSnapshot_userId_fixed`/,
    );
    await expect(db.user.update({ where: { id: bob }, data: { id: "bob-2" } })).rejects.toThrow(/`User_id_fixed`/);
    expect(await orphans()).toBe(0);
  });

  it("a deletion committed while the user's snapshot is being written waits for that batch, then removes it", async () => {
    const users = await fx.createUsers(500);
    const victim = users[250];
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 1])));
    // Holds the batch with the victim's row open, after its INSERT has read "User", as a slow batch would be.
    await db.$executeRawUnsafe(`
      CREATE FUNCTION slow_for_victim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW."userId" = '${victim}' THEN PERFORM pg_sleep(0.6); END IF;
        RETURN NEW;
      END $$`);
    await db.$executeRawUnsafe(
      `CREATE TRIGGER slow_for_victim BEFORE INSERT ON "UsageSnapshot" FOR EACH ROW EXECUTE FUNCTION slow_for_victim()`,
    );

    const sync = syncUsageSnapshots({ redis: redis(), db }, { now });
    await waitForSleepingBatch();
    // Another connection, as the customer's "delete my account" request would be. Without the lock it would commit
    // now, and the batch's own check would then fail the sync on a user it had read a moment before.
    const other = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await other.connect();
    try {
      await other.query(`DELETE FROM "User" WHERE id = $1`, [victim]);
    } finally {
      await other.end();
    }

    const result = await sync;
    expect(result).toMatchObject({ status: "succeeded", users: 500, skipped: 0 });
    const snapshots = await fx.snapshots();
    expect(snapshots.size).toBe(499);
    expect([...snapshots.keys()].some((key) => key.startsWith(`${victim}|`))).toBe(false);
    expect(await orphans()).toBe(0);
  });

  it("deletions racing a whole sync leave no snapshot of a deleted user, and the sync does not fail", async () => {
    const users = await fx.createUsers(3000);
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 1])));
    const doomed = users.filter((_, i) => i % 7 === 3);

    const sync = syncUsageSnapshots({ redis: redis(), db }, { now, scanCount: 200, batchSize: 300 });
    for (let i = 0; i < doomed.length; i += 40) {
      await db.user.deleteMany({ where: { id: { in: doomed.slice(i, i + 40) } } });
    }
    const result = await sync;

    expect(result.status).toBe("succeeded");
    expect(result.users + result.skipped).toBe(3000);
    expect(await orphans()).toBe(0);
    expect(await db.usageSnapshot.count({ where: { userId: { in: doomed } } })).toBe(0);
    expect(await fx.snapshotCount()).toBe(3000 - doomed.length);
  });
});

describe("the writer's two paths (migration 20261203040000): a plain INSERT, and the upsert when rows exist", () => {
  it("a batch meeting rows already written keeps the greater count and the first limit, and writes its new rows", async () => {
    const [alice, bob, carol] = await fx.createUsers(3);
    await fx.setCounts("2026-11", { [alice]: 5, [bob]: 6 });
    await syncUsageSnapshots({ redis: redis(), db }, { now });
    await db.user.update({ where: { id: alice }, data: { monthlyLimit: 77 } });
    // Lower for alice (a retried page carrying an older value), higher for bob, new for carol: the plain INSERT
    // fails on alice's and bob's rows, and the upsert writes all three.
    await fx.setCounts("2026-11", { [alice]: 3, [bob]: 9, [carol]: 4 });
    const again = await syncUsageSnapshots({ redis: redis(), db }, { now, messageId: "msg_same_hour_again" });
    expect(again).toMatchObject({ status: "succeeded", users: 3, skipped: 0 });

    const rows = await db.usageSnapshot.findMany({ orderBy: { used: "asc" } });
    expect(rows.map((row) => [row.userId, row.used, row.limit])).toEqual([
      [carol, 4, 1000],
      [alice, 5, 1000],
      [bob, 9, 1000],
    ]);
  });

  it("a second run in the same hour (the upsert path) racing deletions leaves no snapshot of a deleted user", async () => {
    const users = await fx.createUsers(2000);
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 1])));
    await syncUsageSnapshots({ redis: redis(), db }, { now, scanCount: 200, batchSize: 300 });
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 2])));
    const doomed = users.filter((_, i) => i % 5 === 1);

    const sync = syncUsageSnapshots(
      { redis: redis(), db },
      { now, messageId: "msg_same_hour_race", scanCount: 200, batchSize: 300 },
    );
    for (let i = 0; i < doomed.length; i += 25) {
      await db.user.deleteMany({ where: { id: { in: doomed.slice(i, i + 25) } } });
    }
    const result = await sync;

    expect(result.status).toBe("succeeded");
    expect(await orphans()).toBe(0);
    expect(await db.usageSnapshot.count({ where: { userId: { in: doomed } } })).toBe(0);
    expect(await fx.snapshotCount()).toBe(2000 - doomed.length);
    const survivors = await db.usageSnapshot.findMany({ select: { userId: true, used: true } });
    const index = new Map(users.map((id, i) => [id, i]));
    expect(survivors.every((row) => row.used === index.get(row.userId)! + 2)).toBe(true);
  });

  it("a deletion waits for a batch on the upsert path too, then removes what it wrote", async () => {
    const users = await fx.createUsers(300);
    const victim = users[150];
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 1])));
    await syncUsageSnapshots({ redis: redis(), db }, { now });
    // The same hour again: every batch meets its rows, so the victim's row goes through ON CONFLICT … DO UPDATE,
    // held open there (an update trigger) after the statement has read "User".
    await db.$executeRawUnsafe(`
      CREATE FUNCTION slow_for_victim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW."userId" = '${victim}' THEN PERFORM pg_sleep(0.6); END IF;
        RETURN NEW;
      END $$`);
    await db.$executeRawUnsafe(
      `CREATE TRIGGER slow_for_victim BEFORE UPDATE ON "UsageSnapshot" FOR EACH ROW EXECUTE FUNCTION slow_for_victim()`,
    );
    const sync = syncUsageSnapshots({ redis: redis(), db }, { now, messageId: "msg_same_hour_victim" });
    await waitForSleepingBatch();
    const other = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await other.connect();
    try {
      await other.query(`DELETE FROM "User" WHERE id = $1`, [victim]);
    } finally {
      await other.end();
    }

    expect(await sync).toMatchObject({ status: "succeeded", users: 300 });
    expect(await fx.snapshotCount()).toBe(299);
    expect(await db.usageSnapshot.count({ where: { userId: victim } })).toBe(0);
    expect(await orphans()).toBe(0);
  });
});

async function waitForSleepingBatch() {
  for (let i = 0; i < 200; i++) {
    const [{ n }] = await db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`;
    if (n > 0n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("the batch never reached the victim's row");
}
