import net from "node:net";
import { parse } from "csv-parse/sync";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { handleUsageHistoryRequest } from "~/api/usage-history-request.server";
import { loader as historyLoader, action as historyAction } from "~/routes/api.v1.usage.history";
import { loader as csvLoader } from "~/routes/dashboard.usage[.]csv";
import { createPrismaClient, getDb, setDbForTests } from "~/utils/db.server";
import { HOUR_MS, hourBucket, periodOf, quotaKey } from "~/utils/period";
import { createAppRedis, getRedis } from "~/utils/redis.server";
import { createUserSession } from "~/utils/session.server";
import { createTestApiKey, createTestUser } from "./factories";
import { cookieFrom, getRequest, settle } from "./helpers/requests";
import { TEST_REDIS_URL } from "./setup/test-env";

const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

let userId: string;
let key: string;
let otherKey: string;

// Two months of a customer's history around 1 November 2026: the last three hours of October, the first five of
// November (the counter restarted), and a later November hour after a gap in the syncs.
const SEEDED = [
  { hour: "2026-10-31T21:00:00Z", period: "2026-10", used: 40 },
  { hour: "2026-10-31T22:00:00Z", period: "2026-10", used: 45 },
  { hour: "2026-10-31T23:00:00Z", period: "2026-10", used: 52 },
  { hour: "2026-11-01T00:00:00Z", period: "2026-11", used: 3 },
  { hour: "2026-11-01T01:00:00Z", period: "2026-11", used: 3 },
  { hour: "2026-11-01T02:00:00Z", period: "2026-11", used: 10 },
  { hour: "2026-11-01T03:00:00Z", period: "2026-11", used: 11 },
  { hour: "2026-11-01T04:00:00Z", period: "2026-11", used: 15 },
  { hour: "2026-11-02T09:00:00Z", period: "2026-11", used: 30 },
];

beforeAll(async () => {
  ({ id: userId } = await createTestUser(db, { monthlyLimit: 1000 }));
  ({ key } = await createTestApiKey(db, userId, "export"));
  await db.usageSnapshot.createMany({
    data: SEEDED.map((s) => ({ userId, period: s.period, hour: new Date(s.hour), used: s.used })),
  });
  // Another customer's snapshots in the same hours must never show.
  const other = await createTestUser(db);
  ({ key: otherKey } = await createTestApiKey(db, other.id, "other"));
  await db.usageSnapshot.createMany({
    data: SEEDED.map((s) => ({ userId: other.id, period: s.period, hour: new Date(s.hour), used: s.used * 100 })),
  });
});

async function callHistory(query: string, apiKey: string | null = key, method = "GET") {
  const headers: Record<string, string> = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  const request = new Request(`http://localhost/api/v1/usage/history${query}`, { method, headers });
  return historyLoader({ request, params: {}, context: {} });
}

const RANGE = "?from=2026-10-31T21:00:00Z&to=2026-11-03";

describe("GET /api/v1/usage/history", () => {
  it("answers JSON by the hour with the seeded running totals and the calls between them", async () => {
    const response = await callHistory(RANGE);
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const body = await response.json();
    expect(body.meta).toEqual({
      from: "2026-10-31T21:00:00.000Z",
      to: "2026-11-03T00:00:00.000Z",
      granularity: "hour",
    });
    expect(body.data).toEqual(
      SEEDED.map((s, i) => ({
        period: s.period,
        hour: new Date(s.hour).toISOString(),
        used: s.used,
        // The first row of the range has no earlier October snapshot; November restarts at zero.
        calls: i === 0 || s.period !== SEEDED[i - 1].period ? s.used : s.used - SEEDED[i - 1].used,
      })),
    );
  });

  it("sums days, starting each month from zero", async () => {
    const body = await (await callHistory(`${RANGE}&granularity=day`)).json();
    expect(body.meta.granularity).toBe("day");
    expect(body.meta.from).toBe("2026-10-31T00:00:00.000Z");
    expect(body.data).toEqual([
      { period: "2026-10", day: "2026-10-31", used: 52, calls: 52 },
      { period: "2026-11", day: "2026-11-01", used: 15, calls: 15 },
      { period: "2026-11", day: "2026-11-02", used: 30, calls: 15 },
    ]);
  });

  it("counts a mid-month range's first hour from the month's earlier snapshots", async () => {
    const body = await (await callHistory("?from=2026-11-01T02:00:00Z&to=2026-11-01T04:00:00Z")).json();
    expect(body.data).toEqual([
      { period: "2026-11", hour: "2026-11-01T02:00:00.000Z", used: 10, calls: 7 },
      { period: "2026-11", hour: "2026-11-01T03:00:00.000Z", used: 11, calls: 1 },
    ]);
  });

  it("answers CSV that says the same as the JSON, as an attachment named after the range", async () => {
    const json = await (await callHistory(RANGE)).json();
    const response = await callHistory(`${RANGE}&format=csv`);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/csv; charset=utf-8/);
    expect(response.headers.get("Content-Disposition")).toBe(
      'attachment; filename="sheetmeter-usage-2026-10-31T2100Z-2026-11-03.csv"',
    );
    const text = await response.text();
    expect(text.startsWith("period,hour,used,calls\r\n")).toBe(true);
    const rows = parse(text, {
      columns: true,
      cast: (value, { column }) => (column === "used" || column === "calls" ? Number(value) : value),
    });
    expect(rows).toEqual(json.data);

    const days = await (await callHistory(`${RANGE}&granularity=day&format=csv`)).text();
    expect(days).toBe(
      "period,day,used,calls\r\n2026-10,2026-10-31,52,52\r\n2026-11,2026-11-01,15,15\r\n2026-11,2026-11-02,30,15\r\n",
    );
  });

  it("defaults to this month", async () => {
    const body = await (await callHistory("")).json();
    const period = periodOf(new Date());
    expect(body.meta.from.slice(0, 7)).toBe(period);
    expect(body.meta.from.slice(7)).toBe("-01T00:00:00.000Z");
    expect(body.meta.granularity).toBe("hour");
  });

  it.each([
    ["?from=last-week", "from"],
    ["?to=2026-11-31", "to"],
    ["?granularity=minute", "granularity"],
    ["?format=xml", "format"],
    ["?from=2026-11-05&to=2026-11-04", "to"],
    ["?from=2026-01-01&to=2026-06-01", "to"],
    ["?from=2020-01-01&to=2026-01-01&granularity=day", "to"],
    ["?from=2026-11-01&from=2026-11-02", "from"],
    ["?since=2026-11-01", "since"],
  ])("refuses %s with 400 problem+json naming “%s”", async (query, parameter) => {
    const response = await callHistory(query);
    expect(response.status).toBe(400);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    const body = await response.json();
    expect(body).toMatchObject({ status: 400, parameter });
    expect(body.type).toMatch(/#invalid-parameter$/);
    expect(body.detail).toContain(parameter);
  });

  it("refuses a missing or wrong key with 401 before looking at parameters", async () => {
    const missing = await callHistory("?format=xml", null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("Content-Type")).toBe("application/problem+json");
    expect((await callHistory("", "sm_live_nope")).status).toBe(401);
  });

  it("answers 405 with Allow: GET to anything but GET", async () => {
    for (const method of ["HEAD", "OPTIONS"]) {
      const response = await callHistory("", key, method);
      expect(response.status).toBe(405);
      expect(response.headers.get("Allow")).toBe("GET");
    }
    const post = await historyAction();
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("GET");
  });

  it("consumes no quota", async () => {
    const counter = quotaKey(userId, periodOf(new Date()));
    await raw.set(counter, "7");
    for (let i = 0; i < 5; i++) expect((await callHistory(RANGE)).status).toBe(200);
    expect(await raw.get(counter)).toBe("7");
  });

  it("shows each key's own account only", async () => {
    const body = await (await callHistory(RANGE, otherKey)).json();
    expect(body.data[0].used).toBe(4000);
  });

  it("answers 503 database-unavailable when Postgres is down", async () => {
    // The key is in the Redis key cache from the calls above, so only the history read meets the dead database.
    const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await handleUsageHistoryRequest(
        { redis: getRedis(), db: down },
        new Request(`http://localhost/api/v1/usage/history${RANGE}`, { headers: { Authorization: `Bearer ${key}` } }),
      );
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toBe("application/problem+json");
      expect(response.headers.get("Retry-After")).toBeTruthy();
      expect((await response.json()).type).toMatch(/#database-unavailable$/);
    } finally {
      quiet.mockRestore();
      await down.$disconnect();
    }
  });

  it("answers 503 quota-store-unavailable when Redis is down: the key cannot be checked", async () => {
    const unreachable = createAppRedis({ url: `http://127.0.0.1:${await deadPort()}`, token: "t", timeoutMs: 500 });
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await handleUsageHistoryRequest(
        { redis: unreachable, db },
        new Request(`http://localhost/api/v1/usage/history${RANGE}`, { headers: { Authorization: `Bearer ${key}` } }),
      );
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toBe("application/problem+json");
      expect(response.headers.get("Retry-After")).toBeTruthy();
      expect((await response.json()).type).toMatch(/#quota-store-unavailable$/);
    } finally {
      quiet.mockRestore();
    }
  });
});

describe("GET /dashboard/usage.csv", () => {
  it("downloads the chart's range for the signed-in customer, never cached", async () => {
    const customer = await createTestUser(db);
    const now = hourBucket(new Date()).getTime();
    await db.usageSnapshot.createMany({
      data: [2, 1, 0].map((ago, i) => {
        const hour = new Date(now - ago * HOUR_MS);
        return { userId: customer.id, period: periodOf(hour), hour, used: (i + 1) * 4 };
      }),
    });
    const cookie = cookieFrom(await createUserSession(getRequest("/login"), customer.id, "/dashboard"));
    const response = await settle(
      csvLoader({ request: getRequest("/dashboard/usage.csv?range=24h", { Cookie: cookie }), params: {}, context: {} }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("private, no-store");
    expect(response.headers.get("Content-Disposition")).toMatch(
      /^attachment; filename="sheetmeter-usage-\d{4}-\d{2}-\d{2}T\d{4}Z-\d{4}-\d{2}-\d{2}(T\d{4}Z)?\.csv"$/,
    );
    const rows = parse(await response.text(), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r.hour, r.used])).toEqual(
      [2, 1, 0].map((ago, i) => [new Date(now - ago * HOUR_MS).toISOString(), String((i + 1) * 4)]),
    );

    const days = await settle(
      csvLoader({
        request: getRequest("/dashboard/usage.csv?range=7d&view=day", { Cookie: cookie }),
        params: {},
        context: {},
      }),
    );
    const dayText = await days.text();
    expect(dayText.split("\r\n")[0]).toBe("period,day,used,calls");
    const dayRows = parse(dayText, { columns: true }) as Record<string, string>[];
    expect(dayRows.reduce((sum, r) => sum + Number(r.calls), 0)).toBe(
      rows.reduce((sum, r) => sum + Number(r.calls), 0),
    );
  });

  it("answers the designed plain 503 page within the deadline when Postgres is down", async () => {
    const customer = await createTestUser(db);
    const cookie = cookieFrom(await createUserSession(getRequest("/login"), customer.id, "/dashboard"));
    const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    setDbForTests(down);
    try {
      const response = await settle(
        csvLoader({
          request: getRequest("/dashboard/usage.csv?range=24h", { Cookie: cookie }),
          params: {},
          context: {},
        }),
      );
      expect(response.status).toBe(503);
      expect(response.headers.get("Retry-After")).toBe("30");
      expect(response.headers.get("Content-Disposition")).toBeNull();
      expect(await response.text()).toMatch(/database is not answering/);
    } finally {
      setDbForTests(undefined);
      quiet.mockRestore();
      await down.$disconnect();
    }
  });

  it("sends a visitor without a session to log in", async () => {
    const response = await settle(csvLoader({ request: getRequest("/dashboard/usage.csv"), params: {}, context: {} }));
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toMatch(/^\/login\?redirectTo=/);
  });
});

/** A port nothing listens on: connections to it are refused at once, like a Postgres that is down. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
