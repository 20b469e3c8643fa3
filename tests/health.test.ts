import { Redis } from "@upstash/redis";
import { beforeAll, describe, expect, it } from "vitest";
import { checkHealth } from "~/models/health.server";
import { loader } from "~/routes/healthz";
import { createPrismaClient, getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";

describe("GET /healthz", () => {
  // A probe reaches a process that is already serving; the first connection of a cold test process (seconds on a
  // loaded machine) is not what the 2 s check is about.
  beforeAll(async () => {
    await getDb().$queryRaw`SELECT 1`;
    await getRedis().ping();
  });

  it("answers 200 with both dependencies up", async () => {
    const response = await loader();
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = await response.json();
    expect(body).toMatchObject({ status: "ok", postgres: { ok: true }, redis: { ok: true } });
  });

  it("reports Redis down, with the reason, while Postgres is still up", async () => {
    const deadRedis = new Redis({ url: "http://127.0.0.1:1", token: "x", retry: false, enableTelemetry: false });
    const health = await checkHealth(getDb(), deadRedis);
    expect(health.ok).toBe(false);
    expect(health.postgres.ok).toBe(true);
    expect(health.redis).toMatchObject({ ok: false, error: expect.stringMatching(/ECONNREFUSED|fetch failed/) });
  });

  it("reports Postgres down while Redis is still up", async () => {
    const deadDb = createPrismaClient("postgresql://postgres@127.0.0.1:1/none");
    const health = await checkHealth(deadDb, getRedis());
    expect(health).toMatchObject({ ok: false, postgres: { ok: false }, redis: { ok: true } });
    await deadDb.$disconnect();
  });
});
