import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setMonthlyLimit } from "~/models/user.server";
import { getDb } from "~/utils/db.server";
import { periodOf, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { type AppServer, startApp, stopProcess } from "../bench/lib/app-server";
import { loopbackProductionSecrets } from "../bench/lib/metered-sheet";
import { createTestApiKey, createTestSheet } from "./factories";
import { BUILD_TIMEOUT_MS, buildAppForTest } from "./helpers/built-app";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * Two processes, one truth: two production builds of the app, each with its own in-process caches, on this file's
 * Redis (through its Upstash REST stand-in) and Postgres. What one process (or an operator's command) changes, the
 * other must act on within a second, and the quota must hold across both.
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
const CSV = "id,name\n1,Ada\n2,Grace\n";
const WITHIN_MS = 1_000;

let build: Awaited<ReturnType<typeof buildAppForTest>> | undefined;
const apps: AppServer[] = [];
let a: AppServer;
let b: AppServer;

beforeAll(async () => {
  build = await buildAppForTest();
  const env = {
    ...loopbackProductionSecrets(),
    NODE_ENV: "production",
    APP_URL: "http://127.0.0.1",
    DATABASE_URL: process.env.DATABASE_URL!,
    UPSTASH_REDIS_REST_URL: process.env.UPSTASH_REDIS_REST_URL!,
    UPSTASH_REDIS_REST_TOKEN: process.env.UPSTASH_REDIS_REST_TOKEN!,
    // A burst of 200 calls on a shared two-core machine can outlast the production deadline of 1 s.
    REDIS_TIMEOUT_MS: "5000",
  };
  // One at a time: each start compiles nothing but loads the whole build, and the machine is small.
  apps.push(await startApp(env, { build: build.serverBuild }));
  apps.push(await startApp(env, { build: build.serverBuild }));
  [a, b] = apps;
}, BUILD_TIMEOUT_MS + 60_000);

afterAll(async () => {
  for (const app of apps) await stopProcess(app.process);
  await build?.remove();
  raw.disconnect();
});

function callSheet(app: AppServer, sheetId: string, key: string): Promise<Response> {
  return fetch(`${app.url}/api/v1/sheets/${sheetId}`, { headers: { Authorization: `Bearer ${key}` } });
}

/** Signs a customer up through process `app`'s own form, as a browser would; returns the session cookie. */
async function signUp(app: AppServer): Promise<{ cookie: string; userId: string }> {
  const email = `two-processes-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const response = await postForm(app, "/signup", { email, password: "a long enough password" });
  expect(response.status).toBe(302);
  const cookie = response.headers.get("Set-Cookie")!.split(";")[0];
  const { id } = await db.user.findUniqueOrThrow({ where: { email }, select: { id: true } });
  return { cookie, userId: id };
}

function postForm(app: AppServer, path: string, fields: Record<string, string>, cookie?: string) {
  return fetch(`${app.url}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      // What a browser sends with a same-origin form post (the app's Origin check accepts it).
      "Sec-Fetch-Site": "same-origin",
      ...(cookie ? { Cookie: cookie } : {}),
    },
    body: new URLSearchParams(fields),
  });
}

/** Calls `app` until `accept` holds, for at most WITHIN_MS; returns how long that took (or fails). */
async function within(app: AppServer, sheetId: string, key: string, accept: (response: Response) => boolean) {
  const started = performance.now();
  for (;;) {
    const response = await callSheet(app, sheetId, key);
    if (accept(response)) return performance.now() - started;
    if (performance.now() - started > WITHIN_MS) throw new Error(`still ${response.status} after ${WITHIN_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function customer(app: AppServer) {
  const { cookie, userId } = await signUp(app);
  const { key, summary } = await createTestApiKey(db, userId, "two processes");
  const { sheetId } = await createTestSheet(db, userId, { name: "shared", csv: CSV });
  // Both processes now hold the key, the sheet and the page in memory.
  expect((await callSheet(a, sheetId, key)).status).toBe(200);
  expect((await callSheet(b, sheetId, key)).status).toBe(200);
  return { cookie, userId, key, keyId: summary.id, sheetId };
}

describe("two app processes on one Redis and one Postgres", () => {
  it("admit exactly the remaining quota of 200 concurrent calls spread over both", async () => {
    const { userId, key, sheetId } = await customer(a);
    await setMonthlyLimit(getRedis(), db, userId, 100);
    const counter = quotaKey(userId, periodOf(new Date()));
    await raw.set(counter, "50");
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => callSheet(i % 2 === 0 ? a : b, sheetId, key)),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(50);
    expect(statuses.filter((status) => status === 429)).toHaveLength(150);
    expect(await raw.get(counter)).toBe("100");
  });

  it("answer If-None-Match with 304 over HTTP, counted, with the ETag the other process gave", async () => {
    const { userId, key, sheetId } = await customer(a);
    const first = await callSheet(a, sheetId, key);
    const etag = first.headers.get("ETag")!;
    const counter = quotaKey(userId, periodOf(new Date()));
    const before = Number(await raw.get(counter));
    const revalidated = await fetch(`${b.url}/api/v1/sheets/${sheetId}`, {
      headers: { Authorization: `Bearer ${key}`, "If-None-Match": etag },
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get("ETag")).toBe(etag);
    expect(revalidated.headers.get("Cache-Control")).toBe("private, no-cache");
    expect(await revalidated.text()).toBe("");
    expect(Number(await raw.get(counter))).toBe(before + 1);
  });

  it("refuse, in the other process within a second, a key revoked on the keys page of one", async () => {
    const { cookie, key, keyId, sheetId } = await customer(a);
    const revoked = await postForm(a, "/keys", { intent: "revoke", keyId }, cookie);
    expect(revoked.status).toBe(200);
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: keyId } })).revokedAt).not.toBeNull();
    await within(b, sheetId, key, (response) => response.status === 401);
    expect((await callSheet(a, sheetId, key)).status).toBe(401);
  });

  it("answer 404, in the other process within a second, for a sheet deleted on the sheets page of one", async () => {
    const { cookie, key, sheetId } = await customer(a);
    const deleted = await postForm(a, "/sheets", { intent: "delete", sheetId }, cookie);
    expect(deleted.status).toBe(302);
    expect(await db.sheet.count({ where: { id: sheetId } })).toBe(0);
    await within(b, sheetId, key, (response) => response.status === 404);
    expect((await callSheet(a, sheetId, key)).status).toBe(404);
  });

  it("serve, in the other process within a second, data replaced on the sheets page of one", async () => {
    const { cookie, key, sheetId } = await customer(a);
    const before = (await callSheet(b, sheetId, key)).headers.get("ETag");
    const form = new FormData();
    form.set("intent", "replace");
    form.set("sheetId", sheetId);
    form.set("file", new Blob(["id,name,team\n7,Linus,kernel\n"], { type: "text/csv" }), "new.csv");
    const replaced = await fetch(`${a.url}/sheets`, {
      method: "POST",
      redirect: "manual",
      headers: { "Sec-Fetch-Site": "same-origin", Cookie: cookie },
      body: form,
    });
    expect(replaced.status).toBe(302);
    await within(b, sheetId, key, (response) => response.status === 200 && response.headers.get("ETag") !== before);
    for (const app of [a, b]) {
      const body = await (
        await fetch(`${app.url}/api/v1/sheets/${sheetId}?fields=team`, {
          headers: { Authorization: `Bearer ${key}` },
        })
      ).json();
      expect(body).toMatchObject({ data: [{ team: "kernel" }], meta: { version: 2, total: 1 } });
    }
  });

  it("count against a limit an operator changed, in both processes within a second", async () => {
    const { userId, key, sheetId } = await customer(b);
    expect(await setMonthlyLimit(getRedis(), db, userId, 7)).toBe(true);
    for (const app of [a, b]) {
      await within(app, sheetId, key, (response) => response.headers.get("RateLimit-Limit") === "7");
    }
    // Past the new limit, both refuse.
    await raw.set(quotaKey(userId, periodOf(new Date())), "7");
    expect((await callSheet(a, sheetId, key)).status).toBe(429);
    expect((await callSheet(b, sheetId, key)).status).toBe(429);
  });
});
