import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import * as route from "~/routes/api.cron.update-usage";
import { getEnv } from "~/utils/env.server";
import { createSyncRedis, setSyncRedisForTests } from "~/utils/redis.server";
import { startHttpFaultProxy, targetOf } from "./helpers/fault-proxy";
import { signQstash } from "./helpers/qstash-sign";
import { serveRoute } from "./helpers/serve-action";
import { syncFixtures } from "./helpers/sync-fixtures";

/**
 * A QStash token is valid for minutes. Whoever sees one in transit could send the same request again; each copy used
 * to start a sync run of its own. Over HTTP, as such a copy would arrive.
 */
const served = await serveRoute(route);
const ROUTE_URL = `${served.origin}/api/cron/update-usage`;
// Before anything reads the environment (it is validated once): the signed URL is this server.
process.env.APP_URL = served.origin;

const fx = syncFixtures();
afterAll(async () => {
  await served.close();
  fx.close();
});
beforeEach(async () => {
  await fx.reset();
  vi.spyOn(console, "info").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

async function post(signature: string, body = "{}", messageId = "msg_replay") {
  const response = await fetch(ROUTE_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Upstash-Signature": signature, "Upstash-Message-Id": messageId },
    body,
  });
  return { status: response.status, body: await response.json() };
}

describe("a replayed QStash token", () => {
  it("is acknowledged without a new run, and remembered outside the quota keys for the token's remaining life", async () => {
    const signature = await signQstash({ key: getEnv().QSTASH_CURRENT_SIGNING_KEY, url: ROUTE_URL, body: "{}" });
    const first = await post(signature);
    expect(first.status).toBe(200);
    expect(first.body.replayed).toBeUndefined();

    for (let i = 0; i < 3; i++) {
      const again = await post(signature);
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ replayed: true });
    }
    expect(await fx.runs()).toHaveLength(1);

    const remembered = await fx.raw.keys("*");
    const seen = remembered.filter((key) => !key.startsWith("quota:"));
    expect(seen).toHaveLength(1);
    const ttl = await fx.raw.ttl(seen[0]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it("does not stop a new delivery of the same message, which QStash signs with a token of its own", async () => {
    const key = getEnv().QSTASH_CURRENT_SIGNING_KEY;
    const first = await post(await signQstash({ key, url: ROUTE_URL, body: "{}" }), "{}", "msg_same");
    const second = await post(await signQstash({ key, url: ROUTE_URL, body: "{}" }), "{}", "msg_same");
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.replayed).toBeUndefined();
  });

  it("frees the token when its delivery failed, so a retry with it still runs", async () => {
    const signature = await signQstash({ key: getEnv().QSTASH_CURRENT_SIGNING_KEY, url: ROUTE_URL, body: "nope" });
    expect((await post(signature, "nope")).status).toBe(400);
    expect((await post(signature, "nope")).status).toBe(400);
  });

  it("refuses a token without an id, since its replays could not be told apart", async () => {
    const key = getEnv().QSTASH_CURRENT_SIGNING_KEY;
    const signature = await signQstash({ key, url: ROUTE_URL, body: "{}", omitTokenId: true });
    expect((await post(signature)).status).toBe(401);
    expect(await fx.runs()).toHaveLength(0);
  });
});

describe("a token Redis cannot record", () => {
  it("gets a 503 so QStash retries, runs nothing, and the retry with the same token runs", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    // Redis down between the route and the REST stand-in: every connection reset.
    const proxy = await startHttpFaultProxy({ target: targetOf(process.env.UPSTASH_REDIS_REST_URL!) });
    proxy.setMode("reset");
    setSyncRedisForTests(createSyncRedis(proxy.url, process.env.UPSTASH_REDIS_REST_TOKEN!));
    const signature = await signQstash({ key: getEnv().QSTASH_CURRENT_SIGNING_KEY, url: ROUTE_URL, body: "{}" });
    try {
      const response = await fetch(ROUTE_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Upstash-Signature": signature },
        body: "{}",
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toBe("application/problem+json");
      expect(response.headers.get("Retry-After")).toBe("30");
      expect(await response.json()).toMatchObject({ detail: expect.stringMatching(/QStash will retry/) });
      expect(await fx.runs()).toHaveLength(0);
    } finally {
      setSyncRedisForTests(undefined);
      await proxy.close();
    }

    const retried = await post(signature);
    expect(retried.status).toBe(200);
    expect(retried.body.replayed).toBeUndefined();
    expect(await fx.runs()).toHaveLength(1);
  });
});
