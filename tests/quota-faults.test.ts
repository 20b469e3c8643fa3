import { Redis as IORedis } from "ioredis";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { handleUsageRequest } from "~/api/usage-request.server";
import { action as loginAction } from "~/routes/login";
import { action as signupAction } from "~/routes/signup";
import { loader as liveLoader } from "~/routes/dashboard.live";
import { action as keysAction } from "~/routes/keys";
import { getDb } from "~/utils/db.server";
import { hourBucket, periodOf, quotaKey } from "~/utils/period";
import { createAppRedis, setRedisForTests } from "~/utils/redis.server";
import { createTestApiKey, createTestSheet, createTestUser, uniqueTestEmail } from "./factories";
import { type HttpFaultProxy, startHttpFaultProxy, targetOf } from "./helpers/fault-proxy";
import { cookieFrom, formRequest, getRequest, settle } from "./helpers/requests";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * The quota and the pages that read Redis, with the fault proxy between the app's own Redis client (deadline and
 * resend policy as in production) and the REST stand-in. Every test counts what Redis actually holds afterwards.
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
// The production default, whatever the rest of the suite runs with.
const TIMEOUT_MS = 1000;
const CSV = "id,name\n1,Ada\n2,Grace\n";

let proxy: HttpFaultProxy;
let redis: ReturnType<typeof createAppRedis>;
beforeEach(async () => {
  proxy = await startHttpFaultProxy({ target: targetOf(process.env.UPSTASH_REDIS_REST_URL!) });
  redis = createAppRedis({ url: proxy.url, token: process.env.UPSTASH_REDIS_REST_TOKEN!, timeoutMs: TIMEOUT_MS });
  setRedisForTests(redis);
});
afterEach(async () => {
  setRedisForTests(undefined);
  await proxy.close();
});
afterAll(() => raw.disconnect());

async function apiCaller(monthlyLimit = 100_000) {
  const user = await createTestUser(db, { monthlyLimit });
  const { key } = await createTestApiKey(db, user.id);
  const { sheetId } = await createTestSheet(db, user.id, { csv: CSV });
  const call = async () => {
    const started = performance.now();
    const request = new Request(`http://localhost/api/v1/sheets/${sheetId}`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    const response = await handleSheetRequest({ redis, db }, request, sheetId);
    return { response, ms: performance.now() - started };
  };
  const usage = () =>
    handleUsageRequest(
      { redis, db },
      new Request("http://localhost/api/v1/usage", { headers: { Authorization: `Bearer ${key}` } }),
    );
  const counter = async () => Number(await raw.get(quotaKey(user.id, periodOf(new Date()))));
  return { user, call, usage, counter };
}

/** Lets the refunds that refused calls send without waiting go through the proxy too. */
async function quiesce() {
  await new Promise((resolve) => setTimeout(resolve, 100));
  await proxy.settled();
}

describe("quota with faults between the app and Redis", () => {
  it("counts each of 300 calls at most once when every third Redis reply is lost: counter = 200 answers", async () => {
    const { call, counter } = await apiCaller();
    proxy.setRule((n) => (n % 3 === 0 ? "drop-reply" : "pass"));
    const statuses: number[] = [];
    // Ten at a time, so the lost replies hit batched pipelines of consumptions as well as lone scripts.
    for (let round = 0; round < 30; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => call()));
      statuses.push(...answers.map(({ response }) => response.status));
    }
    await quiesce();
    const served = statuses.filter((status) => status === 200).length;
    expect(statuses).toHaveLength(300);
    expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    // A third of the round trips: after the first call the key and sheet come from memory, so nearly all of them
    // are batched quota checks (and their resends and refunds).
    expect(proxy.stats.faults["drop-reply"]).toBeGreaterThanOrEqual(20);
    expect(served).toBeGreaterThan(0);
    expect(await counter()).toBe(served);
  });

  it("answers 503 within the deadline while Redis hangs, and counts none of them when Redis resumes", async () => {
    const { call, usage, counter } = await apiCaller();
    expect((await call()).response.status).toBe(200);
    expect(await counter()).toBe(1);

    proxy.setMode("hang");
    const refused = [...(await Promise.all(Array.from({ length: 10 }, () => call())))];
    for (let i = 0; i < 3; i++) refused.push(await call());
    for (const { response, ms } of refused) {
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toBe("application/problem+json");
      expect(Number(response.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect((await response.json()).type).toMatch(/#quota-store-unavailable$/);
      expect(ms).toBeLessThan(TIMEOUT_MS + 500);
    }
    const usageStarted = performance.now();
    const usageAnswer = await usage();
    expect(usageAnswer.status).toBe(503);
    expect(performance.now() - usageStarted).toBeLessThan(TIMEOUT_MS + 500);

    // Redis comes back and reads everything that was sent to it while it hung, well past each deadline.
    const heldBeforeRelease = proxy.stats.held;
    expect(heldBeforeRelease).toBeGreaterThan(0);
    proxy.setMode("pass");
    proxy.release();
    await quiesce();
    expect(proxy.stats.held).toBe(0);
    expect(await counter()).toBe(1);

    expect((await call()).response.status).toBe(200);
    expect(await counter()).toBe(2);
  });

  it("restarts each user's counter from their last snapshot, not 0, after FLUSHDB mid-month", async () => {
    const callers = await Promise.all([apiCaller(), apiCaller()]);
    const period = periodOf(new Date());
    const hour = hourBucket(new Date());
    for (const [index, { user, call }] of callers.entries()) {
      await db.usageSnapshot.create({ data: { userId: user.id, period, hour, used: 400 + index } });
      await raw.set(quotaKey(user.id, period), String(450 + index));
      expect((await call()).response.status).toBe(200);
    }
    expect(await callers[0].counter()).toBe(451);

    await raw.flushdb();
    for (const { call } of callers) expect((await call()).response.status).toBe(200);
    expect(await callers[0].counter()).toBe(401);
    expect(await callers[1].counter()).toBe(402);
  });
});

describe("pages that read Redis while it hangs", () => {
  it("log-in answers a form error, not a 500, within the deadline", async () => {
    const user = await createTestUser(db);
    proxy.setMode("hang");
    const started = performance.now();
    const response = await settle(
      loginAction({
        request: formRequest("/login", { email: user.email, password: user.password }),
        params: {},
        context: {},
      }),
    );
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 500);
    expect(response.status).toBe(503);
    expect((await response.json()).errors.form).toBe("We can't check your log-in right now; try again in a minute.");
    expect(response.headers.get("Set-Cookie")).toBeNull();
  });

  it("sign-up answers a form error and creates nothing while Redis hangs or is down, within the deadline", async () => {
    for (const fault of ["hang", "reset"] as const) {
      const email = uniqueTestEmail(`signup-${fault}`);
      proxy.setMode(fault);
      const started = performance.now();
      const response = await settle(
        signupAction({
          request: formRequest("/signup", { email, password: "a long enough password" }),
          // As server.js passes it: with a client address the sign-up throttle must ask Redis first.
          context: { socketAddress: "198.51.100.20" },
          params: {},
        }),
      );
      expect(performance.now() - started, fault).toBeLessThan(TIMEOUT_MS + 500);
      expect(response.status, fault).toBe(503);
      expect(response.headers.get("Retry-After")).toBe("60");
      expect((await response.json()).errors.form).toBe(
        "We can't create accounts right now; nothing was created. Try again in a minute.",
      );
      expect(response.headers.get("Set-Cookie")).toBeNull();
      expect(await db.user.count({ where: { email } })).toBe(0);
      proxy.release("reset");
    }
  });

  it("the dashboard's live counter answers its JSON 503 within the deadline", async () => {
    const signup = await settle(
      signupAction({
        request: formRequest("/signup", { email: uniqueTestEmail("live"), password: "a long enough password" }),
        params: {},
        context: {},
      }),
    );
    proxy.setMode("hang");
    const started = performance.now();
    const response = await settle(
      liveLoader({ request: getRequest("/dashboard/live", { Cookie: cookieFrom(signup) }), params: {}, context: {} }),
    );
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 500);
    expect(response.status).toBe(503);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ error: "Live usage is unavailable right now." });
  });

  it("revoking a key answers a form error saying the key still works, within the deadline", async () => {
    const email = uniqueTestEmail("revoke");
    const signup = await settle(
      signupAction({
        request: formRequest("/signup", { email, password: "a long enough password" }),
        params: {},
        context: {},
      }),
    );
    const owner = await db.user.findUniqueOrThrow({ where: { email } });
    const { summary } = await createTestApiKey(db, owner.id);
    proxy.setMode("hang");
    const started = performance.now();
    const response = await settle(
      keysAction({
        request: formRequest("/keys", { intent: "revoke", keyId: summary.id }, cookieFrom(signup)),
        params: {},
        context: {},
      }),
    );
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 500);
    expect(response.status).toBe(503);
    expect((await response.json()).error).toMatch(/can't revoke keys right now, and this key still works/);
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: summary.id } })).revokedAt).toBeNull();
  });
});
