import { Redis as IORedis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { clearHotCaches } from "~/api/hot-cache.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { handleUsageRequest } from "~/api/usage-request.server";
import { clearApiKeyMemoryCache, hashApiKey } from "~/models/api-keys.server";
import { checkHealth } from "~/models/health.server";
import { action as loginAction } from "~/routes/login";
import { loader as dashboardLoader } from "~/routes/dashboard";
import { loader as keysLoader } from "~/routes/keys";
import { loader as settingsLoader } from "~/routes/settings";
import { loader as sheetsLoader } from "~/routes/sheets";
import { action as signupAction } from "~/routes/signup";
import { createPrismaClient, type Db, getBulkDb, getDb, setDbForTests } from "~/utils/db.server";
import { isDatabaseUnavailable } from "~/utils/database-outage.server";
import { getEnv } from "~/utils/env.server";
import { periodOf, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { createUserSession } from "~/utils/session.server";
import { createTestApiKey, createTestSheet, createTestUser, type TestUser } from "./factories";
import { startTcpFaultProxy, targetOf, type TcpFaultProxy } from "./helpers/fault-proxy";
import { cookieFrom, formRequest, getRequest, settle } from "./helpers/requests";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * Postgres hung (the proxy holds every byte) and Postgres down (every connection reset), between the app's Prisma
 * client and the database. Each request must end within the statement deadline plus 500 ms with the answer designed
 * for it, cost no quota, and answer normally again once Postgres is back.
 */
const DEADLINE_MS = getEnv().DATABASE_STATEMENT_TIMEOUT_MS;
const WITHIN_MS = DEADLINE_MS + 500;
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });

let proxy: TcpFaultProxy;
let proxied: Db;
let owner: TestUser;
let key: string;
let sheetId: string;
let cookie: string;

beforeAll(async () => {
  owner = await createTestUser(getDb());
  ({ key } = await createTestApiKey(getDb(), owner.id));
  ({ sheetId } = await createTestSheet(getDb(), owner.id, {
    name: "cities",
    csv: "city,pop\nParis,2100000\nOslo,700000\n",
  }));
  cookie = cookieFrom(await createUserSession(getRequest("/login"), owner.id, "/dashboard"));
  proxy = await startTcpFaultProxy({ target: targetOf(process.env.DATABASE_URL!) });
  proxied = createPrismaClient(proxy.urlFor(process.env.DATABASE_URL!));
});

beforeEach(() => {
  setDbForTests(proxied);
  // Failures are logged for operators; keep the test output to what the tests assert.
  vi.spyOn(console, "error").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

afterEach(() => {
  proxy.resume();
  proxy.setMode("pass");
  setDbForTests(undefined);
  vi.restoreAllMocks();
});

afterAll(async () => {
  await proxied.$disconnect();
  await proxy.close();
  raw.disconnect();
});

const deps = () => ({ redis: getRedis(), db: getDb() });
const bearer = () => ({ Authorization: `Bearer ${key}` });
const used = async () => Number((await raw.get(quotaKey(owner.id, periodOf(new Date())))) ?? 0);

async function timed(work: () => Promise<unknown>): Promise<{ response: Response; ms: number }> {
  const started = performance.now();
  const response = await settle(work());
  return { response, ms: performance.now() - started };
}

const sheetCall = () =>
  timed(() => handleSheetRequest(deps(), getRequest(`/api/v1/sheets/${sheetId}`, bearer()), sheetId));
const usageCall = () => timed(() => handleUsageRequest(deps(), getRequest("/api/v1/usage", bearer())));
const dashboardCall = () =>
  timed(() => dashboardLoader({ request: getRequest("/dashboard", { Cookie: cookie }), params: {}, context: {} }));

async function expectDatabaseUnavailable({ response, ms }: { response: Response; ms: number }) {
  expect(ms).toBeLessThan(WITHIN_MS);
  expect(response.status).toBe(503);
  expect(response.headers.get("Content-Type")).toBe("application/problem+json");
  expect(response.headers.get("Retry-After")).toBe("5");
  expect(await response.json()).toMatchObject({
    type: "https://sheetmeter.dev/problems#database-unavailable",
    status: 503,
    detail: expect.stringMatching(/not served and not counted/),
  });
}

async function expectOutagePage({ response, ms }: { response: Response; ms: number }) {
  expect(ms).toBeLessThan(WITHIN_MS);
  expect(response.status).toBe(503);
  expect(response.headers.get("Retry-After")).toBe("30");
  expect(await response.text()).toMatch(/database is not answering/);
}

/** Every kind of request answers normally, proving the outage left nothing stuck behind (pool, key cache, quota). */
async function expectRecovered(countBefore: number) {
  const sheet = await sheetCall();
  expect(sheet.response.status).toBe(200);
  expect((await sheet.response.json()).meta.total).toBe(2);
  expect(await used()).toBe(countBefore + 1);
  expect((await usageCall()).response.status).toBe(200);
  expect((await dashboardCall()).response.status).toBe(200);
}

describe("Postgres hung", () => {
  it("answers the sheet API 503 database-unavailable within the deadline, counts nothing, and recovers", async () => {
    expect((await sheetCall()).response.status).toBe(200); // the key is now in the key cache
    const before = await used();
    // The page (and the sheet) would now come from memory; this test is about a call that needs Postgres.
    clearHotCaches();
    proxy.pause();
    for (let i = 0; i < 3; i++) await expectDatabaseUnavailable(await sheetCall());
    expect(await used()).toBe(before);
    proxy.resume();
    await expectRecovered(before);
  });

  it("serves a page it holds in memory while Postgres hangs, and counts it: rows never change in place", async () => {
    expect((await sheetCall()).response.status).toBe(200);
    const before = await used();
    proxy.pause();
    const { response, ms } = await sheetCall();
    expect(response.status).toBe(200);
    expect(ms).toBeLessThan(500);
    expect((await response.json()).meta.total).toBe(2);
    expect(await used()).toBe(before + 1);
  });

  it("names the database, not Redis, when a key missing from the key cache cannot be looked up", async () => {
    clearApiKeyMemoryCache();
    clearHotCaches();
    await raw.del(`apikey:${hashApiKey(key)}`);
    const before = await used();
    proxy.pause();
    await expectDatabaseUnavailable(await sheetCall());
    await expectDatabaseUnavailable(await usageCall());
    expect(await used()).toBe(before);
    proxy.resume();
    await expectRecovered(before);
  });

  it("still answers /api/v1/usage for a cached key: it needs only Redis", async () => {
    expect((await usageCall()).response.status).toBe(200);
    proxy.pause();
    const { response, ms } = await usageCall();
    expect(ms).toBeLessThan(500);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ used: await used(), limit: owner.monthlyLimit });
    // The keys' names live in Postgres: past KEY_NAMES_WAIT_MS the breakdown comes from Redis alone, by id.
    expect(body.keys.every((key: { name: unknown; prefix: unknown }) => key.name === null && key.prefix === null)).toBe(
      true,
    );
  });

  it("answers the dashboard with its designed 503 page within the deadline, then renders again", async () => {
    expect((await dashboardCall()).response.status).toBe(200);
    proxy.pause();
    const { response, ms } = await dashboardCall();
    expect(ms).toBeLessThan(WITHIN_MS);
    expect(response.status).toBe(503);
    expect(await response.text()).toMatch(/database is not answering.*get 503 and are not counted/);
    proxy.resume();
    expect((await dashboardCall()).response.status).toBe(200);
  });

  it("answers /sheets, /keys and /settings with the designed 503 page within the deadline", async () => {
    proxy.pause();
    const args = { request: getRequest("/sheets", { Cookie: cookie }), params: {}, context: {} };
    await expectOutagePage(await timed(() => sheetsLoader(args)));
    await expectOutagePage(
      await timed(() => keysLoader({ ...args, request: getRequest("/keys", { Cookie: cookie }) })),
    );
    await expectOutagePage(
      await timed(() => settingsLoader({ ...args, request: getRequest("/settings", { Cookie: cookie }) })),
    );
  });

  it("answers log-in and sign-up with a form error, not a 500", async () => {
    proxy.pause();
    const login = await timed(() =>
      loginAction({
        request: formRequest("/login", { email: owner.email, password: owner.password }),
        params: {},
        context: {},
      }),
    );
    expect(login.ms).toBeLessThan(WITHIN_MS);
    expect(login.response.status).toBe(503);
    expect(await login.response.json()).toEqual({
      errors: { form: expect.stringMatching(/Log-in is unavailable: our database is not answering/) },
    });

    const signup = await timed(() =>
      signupAction({
        request: formRequest("/signup", { email: "hung.db@example.com", password: "a long enough password" }),
        params: {},
        context: {},
      }),
    );
    expect(signup.ms).toBeLessThan(WITHIN_MS);
    expect(signup.response.status).toBe(503);
    expect(await signup.response.json()).toEqual({
      errors: { form: expect.stringMatching(/Sign-up is unavailable.*Nothing was created/) },
    });
  });

  it("keeps /healthz answering, with Postgres reported down", async () => {
    proxy.pause();
    const started = performance.now();
    const health = await checkHealth(getDb(), getRedis());
    expect(performance.now() - started).toBeLessThan(WITHIN_MS);
    expect(health).toMatchObject({ ok: false, postgres: { ok: false }, redis: { ok: true } });
  });
});

describe("Postgres down", () => {
  it("answers the sheet API, the dashboard and log-in as designed, counts nothing, and recovers", async () => {
    expect((await sheetCall()).response.status).toBe(200);
    const before = await used();
    proxy.setMode("reset");
    proxy.resetAll();
    clearHotCaches();
    await expectDatabaseUnavailable(await sheetCall());
    clearApiKeyMemoryCache();
    clearHotCaches();
    await raw.del(`apikey:${hashApiKey(key)}`);
    await expectDatabaseUnavailable(await sheetCall());
    const dashboard = await dashboardCall();
    expect(dashboard.response.status).toBe(503);
    const login = await settle(
      loginAction({
        request: formRequest("/login", { email: owner.email, password: owner.password }),
        params: {},
        context: {},
      }),
    );
    expect(login.status).toBe(503);
    expect(await used()).toBe(before);

    proxy.setMode("pass");
    await expectRecovered(before);
  });

  it("answers the same when nothing listens any more", async () => {
    const gone = await startTcpFaultProxy({ target: targetOf(process.env.DATABASE_URL!) });
    const closedDb = createPrismaClient(gone.urlFor(process.env.DATABASE_URL!));
    await gone.close();
    setDbForTests(closedDb);
    try {
      clearApiKeyMemoryCache();
      clearHotCaches();
      await raw.del(`apikey:${hashApiKey(key)}`);
      await expectDatabaseUnavailable(await sheetCall());
      expect((await dashboardCall()).response.status).toBe(503);
    } finally {
      await closedDb.$disconnect();
    }
  });
});

describe("the bulk pool", () => {
  it("lets the sync's and the import's statements run past a request's deadline", async () => {
    const seconds = (DEADLINE_MS + 300) / 1000;
    const sleep = (db: Db) => db.$queryRaw`SELECT 1 AS slept FROM pg_sleep(${seconds})`;
    await expect(sleep(getBulkDb())).resolves.toEqual([{ slept: 1 }]);
    setDbForTests(undefined);
    const refused = await sleep(getDb()).catch((error: unknown) => error);
    expect(isDatabaseUnavailable(refused)).toBe(true);
  });
});
