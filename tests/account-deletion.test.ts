import { Redis as IORedis } from "ioredis";
import { drainApiAnswers } from "~/models/request-outcomes.server";
import { afterAll, describe, expect, it } from "vitest";
import { cachedOwner, hotCacheStats } from "~/api/hot-cache.server";
import { DELETED_ACCOUNT_VERSION_TTL_SECONDS, deleteAccount } from "~/models/account-deletion.server";
import { admitTestEvent } from "~/models/action-limits.server";
import { hashApiKey } from "~/models/api-keys.server";
import { ownerVersionKey } from "~/models/owner-version.server";
import { setMonthlyLimit } from "~/models/user.server";
import { setWebhookUrl } from "~/models/webhook-endpoints.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { loader as historyLoader } from "~/routes/api.v1.usage.history";
import { action as settingsAction } from "~/routes/settings";
import { getDb } from "~/utils/db.server";
import { hourBucket, periodOf, previousPeriod, quotaKey, thresholdMarkKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { createUserSession } from "~/utils/session.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { cookieFrom, formRequest, settle, TEST_ORIGIN } from "./helpers/requests";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * "Delete my account" leaves nothing of the account in Postgres (every table, searched for any of its ids) or in
 * Redis (every key, searched by name and content), in this process's caches, or working as an API key, while
 * another account's data stays as it was.
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

const args = (request: Request) => ({ request, params: {}, context: {} });
const CSV = "id,name\n1,Ada\n2,Grace\n3,Edsger\n";

async function callSheet(sheetId: string, key: string) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  return sheetLoader({ request, params: { sheetId }, context: {} });
}

async function callHistory(key: string) {
  const request = new Request("http://localhost/api/v1/usage/history", { headers: { Authorization: `Bearer ${key}` } });
  return historyLoader({ request, params: {}, context: {} });
}

async function logIn(userId: string) {
  return cookieFrom(await createUserSession(new Request(`${TEST_ORIGIN}/login`), userId, "/settings", { db }));
}

/** An account with something in every place the app keeps data, through the app's own functions where it can. */
async function populatedAccount() {
  const user = await createTestUser(db, { monthlyLimit: 1000 });
  const keys = [await createTestApiKey(db, user.id, "one"), await createTestApiKey(db, user.id, "two")];
  const sheets = [
    await createTestSheet(db, user.id, { name: "people", csv: CSV }),
    await createTestSheet(db, user.id, { name: "more", csv: CSV }),
  ];
  const cookies = [await logIn(user.id), await logIn(user.id)];
  // An operator's change of plan: rewrites the keys' cache entries and sets the owner's cache version.
  await setMonthlyLimit(getRedis(), db, user.id, 1000);

  // API calls: counters, per-key counts, key cache entries, the owner's cache version, in-process caches.
  for (const key of keys) {
    for (const sheet of sheets) expect((await callSheet(sheet.sheetId, key.key)).status).toBe(200);
  }
  expect((await callHistory(keys[0].key)).status).toBe(200);
  const now = new Date();
  const period = periodOf(now);
  await raw.set(quotaKey(user.id, previousPeriod(period)), "17");
  await raw.set(thresholdMarkKey(user.id, period, 80), "1000");

  // History: snapshots of this month and the last, per account and per key.
  const hour = hourBucket(now);
  const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 15));
  await db.usageSnapshot.createMany({
    data: [
      { userId: user.id, period, hour, used: 4 },
      { userId: user.id, period: periodOf(lastMonth), hour: lastMonth, used: 17 },
    ],
  });
  await db.keyUsageSnapshot.createMany({
    data: keys.map((key) => ({ keyId: key.summary.id, userId: user.id, period, hour, used: 2 })),
  });

  // Webhook: endpoint, a delivery, the test-event limit.
  const endpoint = await setWebhookUrl(db, user.id, "https://hooks.example.com/x", { allowLoopbackHttp: false });
  expect(endpoint.ok).toBe(true);
  await db.webhookDelivery.create({
    data: {
      userId: user.id,
      eventId: `evt_${user.id}`,
      type: "webhook.test",
      url: "https://hooks.example.com/x",
      body: "{}",
    },
  });
  expect((await admitTestEvent(getRedis(), user.id)).admitted).toBe(true);

  // A wrong password on /settings leaves a password re-entry attempt in Redis.
  const wrong = await settle(
    settingsAction(
      args(formRequest("/settings", { intent: "change-email", email: "x@example.com", password: "nope" }, cookies[1])),
    ),
  );
  expect(wrong.status).toBe(400);

  return { user, keys, sheets, cookies };
}

/** Every string that would identify the account if found anywhere. */
function tokensOf(account: Awaited<ReturnType<typeof populatedAccount>>, sessionIds: string[]) {
  return [
    account.user.id,
    account.user.email,
    ...account.keys.flatMap((key) => [key.summary.id, key.key]),
    ...account.sheets.map((sheet) => sheet.sheetId),
    ...sessionIds,
  ];
}

/** Rows of any table (row_to_json of the whole row) that mention a token: tables added later are covered too. */
async function postgresMentions(tokens: string[]): Promise<string[]> {
  const tables = await db.$queryRaw<{ name: string }[]>`
    SELECT quote_ident(table_name) AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
  expect(tables.length).toBeGreaterThan(8);
  const found: string[] = [];
  for (const { name } of tables) {
    for (const token of tokens) {
      const [{ n }] = await db.$queryRawUnsafe<{ n: bigint }[]>(
        `SELECT count(*) AS n FROM ${name} t WHERE strpos(row_to_json(t)::text, $1) > 0`,
        token,
      );
      if (n > 0n) found.push(`${name}: ${n} row(s) mention ${token}`);
    }
  }
  return found;
}

/** Every Redis key (SCAN) whose name or value mentions a token, with what it holds. */
async function redisMentions(
  tokens: string[],
  hashes: string[],
  account: { userId: string; email: string },
): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await raw.scan(cursor, "COUNT", 500);
    cursor = next;
    for (const key of keys) {
      const type = await raw.type(key);
      const value =
        type === "string"
          ? await raw.get(key)
          : type === "hash"
            ? JSON.stringify(await raw.hgetall(key))
            : type === "set"
              ? JSON.stringify(await raw.smembers(key))
              : type === "list"
                ? JSON.stringify(await raw.lrange(key, 0, -1))
                : type === "zset"
                  ? JSON.stringify(await raw.zrange(key, 0, -1))
                  : `(${type})`;
      if (key === ownerVersionKey(account.userId)) continue; // checked by leftInRedis
      if (key.startsWith("consumption:")) {
        // A call's exactly-once record (quota.server.ts): its answer, counts and key id, named by a random id, so
        // no deletion can find it; it holds no user id or email and is gone within a minute of the call.
        const ttl = await raw.pttl(key);
        if (ttl > 60_000 || ttl < 0 || [account.userId, account.email].some((token) => value?.includes(token))) {
          found.push(`${key} = ${value} (ttl ${ttl} ms)`);
        }
        continue;
      }
      const hashed = hashes.find((hash) => key === `apikey:${hash}`);
      if (hashed) {
        // What an unknown key gets anyway: refused, naming no account, gone within 30 s.
        if (value !== JSON.stringify({ status: "unknown" }) || (await raw.ttl(key)) > 30) {
          found.push(`${key} = ${value}`);
        }
        continue;
      }
      for (const token of tokens) {
        if (key.includes(token) || value?.includes(token)) found.push(`${key} = ${value}`);
      }
    }
  } while (cursor !== "0");
  return found;
}

async function postgresFootprint(userId: string) {
  const sheetIds = (await db.sheet.findMany({ where: { userId }, select: { id: true } })).map((sheet) => sheet.id);
  return {
    users: await db.user.count({ where: { id: userId } }),
    apiKeys: await db.apiKey.count({ where: { userId } }),
    sheets: sheetIds.length,
    rows: await db.sheetRow.count({ where: { sheetId: { in: sheetIds } } }),
    sessions: await db.session.count({ where: { userId } }),
    usageSnapshots: await db.usageSnapshot.count({ where: { userId } }),
    keyUsageSnapshots: await db.keyUsageSnapshot.count({ where: { userId } }),
    webhookEndpoints: await db.webhookEndpoint.count({ where: { userId } }),
    webhookDeliveries: await db.webhookDelivery.count({ where: { userId } }),
  };
}

async function redisFootprint(userId: string) {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, page] = await raw.scan(cursor, "MATCH", `*${userId}*`, "COUNT", 500);
    cursor = next;
    keys.push(...page);
  } while (cursor !== "0");
  return keys.sort();
}

/**
 * The account's keys in Redis, but for its cache version: that stays, a random token, for a minute after the
 * deletion (DELETED_ACCOUNT_VERSION_TTL_SECONDS), so that no process can take what it still holds in memory for
 * current; it is checked to be exactly that and to expire in time.
 */
async function leftInRedis(userId: string): Promise<string[]> {
  const left = [];
  for (const key of await redisFootprint(userId)) {
    if (key === ownerVersionKey(userId)) {
      const ttl = await raw.ttl(key);
      const value = await raw.get(key);
      if (ttl > 0 && ttl <= DELETED_ACCOUNT_VERSION_TTL_SECONDS && /^v[A-Za-z0-9_-]{16}$/.test(value ?? "")) continue;
      left.push(`${key} = ${value} (ttl ${ttl} s)`);
    } else {
      left.push(key);
    }
  }
  return left;
}

describe("deleting an account", () => {
  it("on /settings leaves nothing of it in Postgres, Redis or this process, and leaves another account alone", async () => {
    const doomed = await populatedAccount();
    const other = await populatedAccount();
    const sessionIds = (await db.session.findMany({ where: { userId: doomed.user.id } })).map((s) => s.id);
    expect(sessionIds).toHaveLength(2);
    const tokens = tokensOf(doomed, sessionIds);
    const hashes = doomed.keys.map((key) => hashApiKey(key.key));

    // Everything is there before: the footprint the deletion must remove.
    expect(await postgresFootprint(doomed.user.id)).toEqual({
      users: 1,
      apiKeys: 2,
      sheets: 2,
      rows: 6,
      sessions: 2,
      usageSnapshots: 2,
      keyUsageSnapshots: 2,
      webhookEndpoints: 1,
      webhookDeliveries: 1,
    });
    expect(await redisFootprint(doomed.user.id)).toEqual(
      expect.arrayContaining([
        `apikey:owner-version:${doomed.user.id}`,
        `alert:${doomed.user.id}:${periodOf(new Date())}:80`,
        quotaKey(doomed.user.id, periodOf(new Date())),
        quotaKey(doomed.user.id, previousPeriod(periodOf(new Date()))),
        `keyusage:${doomed.user.id}:${periodOf(new Date())}`,
        `test-events:${doomed.user.id}`,
        `history-exports:${doomed.user.id}:${doomed.keys[0].summary.id}`,
      ]),
    );
    expect((await redisFootprint(doomed.user.id)).some((key) => key.startsWith("password-reentry:"))).toBe(true);
    expect(cachedOwner(hashes[0])).toMatchObject({ userId: doomed.user.id });
    const otherPostgres = await postgresFootprint(other.user.id);
    const otherRedis = await redisFootprint(other.user.id);
    const otherCounter = await raw.get(quotaKey(other.user.id, periodOf(new Date())));

    // A confirmation that does not match, then a wrong password: nothing is deleted.
    const post = (fields: Record<string, string>) =>
      settle(
        settingsAction(args(formRequest("/settings", { intent: "delete-account", ...fields }, doomed.cookies[0]))),
      );
    const mismatch = await post({ confirmEmail: "someone@example.com", password: doomed.user.password });
    expect(mismatch.status).toBe(400);
    expect((await mismatch.json()).errors.confirmEmail).toContain(doomed.user.email);
    const wrongPassword = await post({ confirmEmail: doomed.user.email, password: "not it" });
    expect(wrongPassword.status).toBe(400);
    expect((await postgresFootprint(doomed.user.id)).users).toBe(1);

    // The real thing: the email typed in other case, the right password.
    const deleted = await post({ confirmEmail: doomed.user.email.toUpperCase(), password: doomed.user.password });
    expect(deleted.status).toBe(302);
    expect(deleted.headers.get("Location")).toBe("/");
    const cookies = deleted.headers.getSetCookie();
    expect(
      cookies.some((cookie) =>
        /^__sheetmeter_session=;.*Max-Age=0|^__sheetmeter_session=;.*Expires=Thu, 01 Jan 1970/.test(cookie),
      ),
    ).toBe(true);
    expect(cookies.some((cookie) => cookie.startsWith("__sheetmeter_notice="))).toBe(true);

    expect(await postgresFootprint(doomed.user.id)).toEqual({
      users: 0,
      apiKeys: 0,
      sheets: 0,
      rows: 0,
      sessions: 0,
      usageSnapshots: 0,
      keyUsageSnapshots: 0,
      webhookEndpoints: 0,
      webhookDeliveries: 0,
    });
    expect(await postgresMentions(tokens)).toEqual([]);
    expect(await leftInRedis(doomed.user.id)).toEqual([]);
    expect(await redisMentions(tokens, hashes, { userId: doomed.user.id, email: doomed.user.email })).toEqual([]);

    // This process forgot the keys, and the API refuses them at once.
    expect(cachedOwner(hashes[0])).toBeUndefined();
    expect((await callSheet(doomed.sheets[0].sheetId, doomed.keys[0].key)).status).toBe(401);
    expect((await callSheet(doomed.sheets[1].sheetId, doomed.keys[1].key)).status).toBe(401);
    // The refusals created no counter.
    expect(await leftInRedis(doomed.user.id)).toEqual([]);

    // The other account is as it was, and its key still works.
    expect(await postgresFootprint(other.user.id)).toEqual(otherPostgres);
    expect(await redisFootprint(other.user.id)).toEqual(otherRedis);
    expect(await raw.get(quotaKey(other.user.id, periodOf(new Date())))).toBe(otherCounter);
    expect((await callSheet(other.sheets[0].sheetId, other.keys[0].key)).status).toBe(200);
    expect(hotCacheStats().owners.entries).toBeGreaterThan(0);
  });

  it("deleteAccount reports what it removed, and run again finishes nothing twice", async () => {
    const account = await populatedAccount();
    // Outcome lines land in the background; the first run must meet them, so the second has nothing left to do.
    await drainApiAnswers(getRedis());
    const first = await deleteAccount({ db, redis: getRedis() }, account.user.id);
    expect(first).toMatchObject({
      userId: account.user.id,
      found: true,
      deleted: {
        apiKeys: 2,
        sheets: 2,
        rows: 6,
        sessions: 2,
        usageSnapshots: 2,
        keyUsageSnapshots: 2,
        webhookEndpoints: 1,
        webhookDeliveries: 1,
      },
    });
    expect(first.deleted.redisKeys).toBeGreaterThanOrEqual(7);
    const again = await deleteAccount({ db, redis: getRedis() }, account.user.id);
    expect(again).toMatchObject({ found: false, deleted: { apiKeys: 0, sheets: 0, redisKeys: 0 } });
  });

  it("finishes the Redis part for an account already gone from Postgres (a retry after a failure)", async () => {
    const account = await populatedAccount();
    // The API calls' outcome lines are written in the background: let them land before the first run, which deletes
    // them, so the retry below meets only the keys this test leaves over.
    await drainApiAnswers(getRedis());
    await deleteAccount({ db, redis: getRedis() }, account.user.id);
    // As if that run had lost Redis after Postgres committed: the account's counters are still there.
    const period = periodOf(new Date());
    await raw.set(quotaKey(account.user.id, period), "12");
    await raw.set(`apikey:owner-version:${account.user.id}`, "v-left-over");
    await raw.hset(`keyusage:${account.user.id}:${period}`, account.keys[0].summary.id, "3");
    const retry = await deleteAccount({ db, redis: getRedis() }, account.user.id);
    expect(retry).toMatchObject({ found: false, deleted: { redisKeys: 2 } });
    expect(await leftInRedis(account.user.id)).toEqual([]);
  });
});
