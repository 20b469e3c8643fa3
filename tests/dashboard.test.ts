import net from "node:net";
import { Redis } from "@upstash/redis";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { MAX_CHART_POINTS } from "~/models/usage-history.server";
import { loader as dashboardLoader } from "~/routes/dashboard";
import { loader as liveLoader } from "~/routes/dashboard.live";
import { createPrismaClient, getDb, setDbForTests } from "~/utils/db.server";
import { hourBucket, periodOf, quotaKey } from "~/utils/period";
import { getRedis, setRedisForTests } from "~/utils/redis.server";
import { createUserSession } from "~/utils/session.server";
import { createTestSheet, createTestUser } from "./factories";
import { cookieFrom, getRequest, settle } from "./helpers/requests";

const db = getDb();
const HOUR = 3_600_000;

async function makeCustomer(monthlyLimit = 1000) {
  const user = await createTestUser(db, { monthlyLimit });
  const cookie = cookieFrom(await createUserSession(getRequest("/login"), user.id, "/dashboard"));
  return { id: user.id, cookie };
}

/** `hours` hourly snapshots ending at the current hour, counting `perHour` a call each hour within each month. */
async function seedSnapshots(userId: string, hours: number, perHour = 2) {
  const end = hourBucket(new Date()).getTime();
  const rows: { userId: string; period: string; hour: Date; used: number }[] = [];
  let used = 0;
  for (let i = hours - 1; i >= 0; i--) {
    const hour = new Date(end - i * HOUR);
    const period = periodOf(hour);
    if (rows.length > 0 && rows[rows.length - 1].period !== period) used = 0;
    used += perHour;
    rows.push({ userId, period, hour, used });
  }
  await db.usageSnapshot.createMany({ data: rows });
  return rows;
}

async function loadDashboard(cookie: string, search = "") {
  const response = await settle(
    dashboardLoader({ request: getRequest(`/dashboard${search}`, { Cookie: cookie }), params: {}, context: {} }),
  );
  expect(response.status).toBe(200);
  return response.json();
}

async function loadLive(cookie?: string) {
  const response = await liveLoader({
    request: getRequest("/dashboard/live", cookie ? { Cookie: cookie } : {}),
    params: {},
    context: {},
  });
  // Success and error bodies differ; the tests look at fields of either.
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body };
}

/** A port nothing listens on: connections to it are refused at once, like a Redis that is down. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

afterEach(() => {
  setRedisForTests(undefined);
  setDbForTests(undefined);
  vi.restoreAllMocks();
});

/** Failures are logged for operators; the tests check that they are, and keep the output quiet. */
function captureErrors() {
  return vi.spyOn(console, "error").mockImplementation(() => {});
}

async function withRedisDown<T>(work: () => Promise<T>): Promise<T> {
  setRedisForTests(
    new Redis({
      url: `http://127.0.0.1:${await deadPort()}`,
      token: "unused",
      retry: { retries: 0 },
      enableTelemetry: false,
    }),
  );
  return work();
}

describe("dashboard loader", () => {
  let customer: { id: string; cookie: string };
  let snapshots: Awaited<ReturnType<typeof seedSnapshots>>;

  beforeAll(async () => {
    customer = await makeCustomer(5000);
    snapshots = await seedSnapshots(customer.id, 90 * 24);
    // The live counter runs ahead of the last sync, as it does between hourly runs.
    const lastUsed = snapshots.at(-1)!.used;
    await getRedis().set(quotaKey(customer.id, periodOf(new Date())), lastUsed + 7);
    const prices = Array.from({ length: 1234 }, (_, i) => `sku-${i},${i}`);
    await createTestSheet(db, customer.id, { name: "Prices", csv: ["sku,price", ...prices].join("\n") });
    await db.syncRun.create({
      data: { hour: hourBucket(new Date()), status: "succeeded", finishedAt: new Date(Date.now() - 12 * 60_000) },
    });
    // Another customer's data must never show up.
    const other = await makeCustomer();
    await seedSnapshots(other.id, 48, 50);
    await createTestSheet(db, other.id, { name: "Not yours" });
  });

  it("returns live usage, the week's history, the last sync and the sheets", async () => {
    const data = await loadDashboard(customer.cookie);
    expect(data.range).toBe("7d");
    expect(data.user).toMatchObject({ monthlyLimit: 5000 });

    expect(data.usage.ok).toBe(true);
    const lastUsed = snapshots.at(-1)!.used;
    expect(data.usage.data).toMatchObject({ used: lastUsed + 7, limit: 5000, remaining: 5000 - lastUsed - 7 });
    expect(data.usage.data.period).toBe(periodOf(new Date()));
    expect(Date.parse(data.usage.data.resetsAt)).toBeGreaterThan(Date.now());

    expect(data.history.ok).toBe(true);
    expect(data.history.data.hasAnyHistory).toBe(true);
    expect(data.history.data.points).toHaveLength(168);
    expect(data.history.data.points.at(-1)).toEqual({
      hour: snapshots.at(-1)!.hour.toISOString(),
      used: lastUsed,
      period: snapshots.at(-1)!.period,
      // Seeded without one, as rows written before the limit was kept: the chart falls back to the current limit.
      limit: null,
    });
    // No keys yet: the breakdown is there, empty; the chart is the account's.
    expect(data.keyId).toBeNull();
    expect(data.byKey).toEqual({ ok: true, data: { source: "live", keys: [] } });

    expect(data.lastSync).toEqual({ ok: true, data: expect.objectContaining({ status: "succeeded" }) });
    expect(data.sheets).toEqual({
      ok: true,
      data: {
        hasMore: false,
        sheets: [{ id: expect.any(String), name: "Prices", rowCount: 1234, dataUpdatedAt: expect.any(String) }],
      },
    });
  });

  it("takes the range from the URL and falls back to 7 days for anything else", async () => {
    const day = await loadDashboard(customer.cookie, "?range=24h");
    expect(day.range).toBe("24h");
    expect(day.history.data.points).toHaveLength(24);

    const month = await loadDashboard(customer.cookie, "?range=30d");
    expect(month.range).toBe("30d");
    // 720 hourly snapshots thinned on the server; the newest survives.
    expect(month.history.data.points.length).toBeLessThanOrEqual(MAX_CHART_POINTS);
    expect(month.history.data.points.length).toBeGreaterThan(100);
    expect(month.history.data.points.at(-1).hour).toBe(snapshots.at(-1)!.hour.toISOString());

    const bogus = await loadDashboard(customer.cookie, "?range=1y");
    expect(bogus.range).toBe("7d");
    expect(bogus.history.data.points).toHaveLength(168);
  });

  it("sends calls per hour or per day for the bar views, the same as the export would", async () => {
    const cumulative = await loadDashboard(customer.cookie, "?range=24h");
    expect(cumulative.view).toBe("cumulative");
    expect(cumulative.history.data.bars).toBeNull();

    const hours = await loadDashboard(customer.cookie, "?range=24h&view=hour");
    expect(hours.view).toBe("hour");
    expect(hours.history.data.bars).toMatchObject({ granularity: "hour" });
    const hourBuckets = hours.history.data.bars.buckets as { start: string; used: number; calls: number }[];
    expect(hourBuckets).toHaveLength(24);
    expect(hourBuckets.at(-1)!.used).toBe(snapshots.at(-1)!.used);
    // Each hour's calls are the growth since the hour before (or the whole count in a month's first hour).
    for (const bucket of hourBuckets) expect([2, bucket.used]).toContain(bucket.calls);

    const days = await loadDashboard(customer.cookie, "?range=7d&view=day");
    const dayBuckets = days.history.data.bars.buckets as { start: string; calls: number }[];
    expect(days.history.data.bars.granularity).toBe("day");
    expect(dayBuckets.every((b) => b.start.endsWith("T00:00:00.000Z"))).toBe(true);
    expect(dayBuckets.length).toBeGreaterThanOrEqual(7);
    expect(dayBuckets.length).toBeLessThanOrEqual(8);

    expect((await loadDashboard(customer.cookie, "?view=week")).view).toBe("cumulative");
  });

  it("still renders history, sheets and sync status when Redis is down", async () => {
    const errors = captureErrors();
    const data = await withRedisDown(() => loadDashboard(customer.cookie));
    expect(errors).toHaveBeenCalledWith("dashboard: live usage failed:", expect.any(Error));
    expect(data.usage).toEqual({ ok: false });
    expect(data.history.ok).toBe(true);
    expect(data.history.data.points).toHaveLength(168);
    expect(data.sheets.ok).toBe(true);
    expect(data.lastSync.ok).toBe(true);
  });

  it("still renders the live count when the history cannot be read", async () => {
    // This file owns its database, so breaking a table here affects no other test file.
    const errors = captureErrors();
    await db.$executeRawUnsafe(`ALTER TABLE "UsageSnapshot" RENAME TO "UsageSnapshotAway"`);
    try {
      const data = await loadDashboard(customer.cookie);
      expect(data.history).toEqual({ ok: false });
      expect(errors).toHaveBeenCalledWith("dashboard: usage history failed:", expect.anything());
      expect(data.usage.ok).toBe(true);
      expect(data.sheets.ok).toBe(true);
    } finally {
      await db.$executeRawUnsafe(`ALTER TABLE "UsageSnapshotAway" RENAME TO "UsageSnapshot"`);
    }
  });

  it("shows a new customer no history and no usage, so the page can offer the first-call guide", async () => {
    const newcomer = await makeCustomer();
    const data = await loadDashboard(newcomer.cookie);
    expect(data.usage.data).toMatchObject({ used: 0, limit: 1000, remaining: 1000 });
    expect(data.history.data).toMatchObject({ hasAnyHistory: false, points: [] });
    expect(data.sheets.data).toEqual({ hasMore: false, sheets: [] });
  });

  it("lists the newest sheets and says when there are more", async () => {
    const owner = await makeCustomer();
    for (let i = 1; i <= 7; i++) {
      await createTestSheet(db, owner.id, { name: `Sheet ${i}`, createdAt: new Date(Date.UTC(2026, 0, i)) });
    }
    const data = await loadDashboard(owner.cookie);
    expect(data.sheets.data.hasMore).toBe(true);
    expect(data.sheets.data.sheets.map((s: { name: string }) => s.name)).toEqual([
      "Sheet 7",
      "Sheet 6",
      "Sheet 5",
      "Sheet 4",
      "Sheet 3",
      "Sheet 2",
    ]);
  });

  it("answers a designed 503 when Postgres is down, since there is no account to show", async () => {
    const errors = captureErrors();
    const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
    setDbForTests(down);
    try {
      const response = await settle(
        dashboardLoader({ request: getRequest("/dashboard", { Cookie: customer.cookie }), params: {}, context: {} }),
      );
      expect(response.status).toBe(503);
      expect(await response.text()).toMatch(/database is not answering/);
      expect(errors).toHaveBeenCalledWith("dashboard: user lookup failed:", expect.anything());
    } finally {
      await down.$disconnect();
    }
  });

  it("sends a signed-out visitor to log in", async () => {
    const response = await settle(dashboardLoader({ request: getRequest("/dashboard"), params: {}, context: {} }));
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/login?redirectTo=%2Fdashboard");
  });
});

describe("GET /dashboard/live", () => {
  it("answers the live count as JSON, uncached, without consuming quota", async () => {
    const customer = await makeCustomer(100);
    const key = quotaKey(customer.id, periodOf(new Date()));
    await getRedis().set(key, 42);
    for (let i = 0; i < 3; i++) {
      const { status, headers, body } = await loadLive(customer.cookie);
      expect(status).toBe(200);
      expect(headers.get("Cache-Control")).toBe("private, no-store");
      expect(body).toMatchObject({ used: 42, limit: 100, remaining: 58, period: periodOf(new Date()) });
      expect(Date.parse(String(body.at))).toBeLessThanOrEqual(Date.now());
    }
    expect(Number(await getRedis().get(key))).toBe(42);
  });

  it("answers 401 JSON, not a redirect, when the session is missing", async () => {
    const { status, body } = await loadLive();
    expect(status).toBe(401);
    expect(body.error).toMatch(/log in/);
  });

  it("answers 503 when Redis is down", async () => {
    const customer = await makeCustomer();
    captureErrors();
    const { status, body } = await withRedisDown(() => loadLive(customer.cookie));
    expect(status).toBe(503);
    expect(body.error).toMatch(/unavailable/);
  });
});
