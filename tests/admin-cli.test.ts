import { describe, expect, it } from "vitest";
import { ownerVersionKey } from "~/models/owner-version.server";
import { verifyLogin } from "~/models/user.server";
import { getDb } from "~/utils/db.server";
import { periodOf, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { createTestApiKey, createTestSheet } from "./factories";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";

describe("npm run admin", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("user:create prints the new user's id as JSON on the last line", async () => {
    const result = await runAdmin([
      "user:create",
      "--email",
      "ops@example.com",
      "--password",
      "operator password",
      "--limit",
      "250",
    ]);
    expect(result.status).toBe(0);
    expect(result.json).toMatchObject({ userId: expect.any(String), monthlyLimit: 250 });
    const user = await verifyLogin(getDb(), "ops@example.com", "operator password");
    expect(user?.id).toBe(result.json!.userId);
    expect(user?.monthlyLimit).toBe(250);
  });

  it("user:set-limit changes the limit and bumps the account's cache version for the API processes", async () => {
    const created = await runAdmin(["user:create", "--email", "limit@example.com", "--password", "long password"]);
    const userId = String(created.json!.userId);
    const result = await runAdmin(["user:set-limit", "--user", userId, "--limit", "42"]);
    expect(result.status).toBe(0);
    expect(result.json).toEqual({ userId, monthlyLimit: 42 });
    const user = await getDb().user.findUniqueOrThrow({ where: { id: userId }, select: { monthlyLimit: true } });
    expect(user.monthlyLimit).toBe(42);
    expect(await getRedis().get(ownerVersionKey(userId))).toMatch(/^v/);
    const unknown = await runAdmin(["user:set-limit", "--user", "nobody", "--limit", "1"]);
    expect(unknown.status).toBe(2);
  });

  it("user:delete deletes the account and everything it owns, printing what went as one JSON object", async () => {
    const db = getDb();
    const created = await runAdmin(["user:create", "--email", "leaving@example.com", "--password", "long password"]);
    const userId = String(created.json!.userId);
    const { summary } = await createTestApiKey(db, userId, "cli");
    await createTestSheet(db, userId, { csv: "a\n1\n2\n" });
    await getRedis().set(quotaKey(userId, periodOf(new Date())), 5);

    const result = await runAdmin(["user:delete", "--user", userId]);
    expect(result.status).toBe(0);
    expect(result.json).toMatchObject({
      userId,
      found: true,
      deleted: { apiKeys: 1, sheets: 1, rows: 2, sessions: 0, redisKeys: 1 },
    });
    expect(await db.user.count({ where: { id: userId } })).toBe(0);
    expect(await db.apiKey.count({ where: { id: summary.id } })).toBe(0);
    expect(await getRedis().exists(quotaKey(userId, periodOf(new Date())))).toBe(0);
    // The cache version outlives the account by a minute, for API processes that still hold its keys in memory.
    expect(await getRedis().ttl(ownerVersionKey(userId))).toBeLessThanOrEqual(65);

    // Run again (to finish a deletion that failed half-way): nothing left in Postgres, said so, exit 0.
    const again = await runAdmin(["user:delete", "--user", userId]);
    expect(again.status).toBe(0);
    expect(again.json).toMatchObject({ userId, found: false });
  });

  it("prints usage and exits 2 for a missing flag, a bad value or an unknown command", async () => {
    const missing = await runAdmin(["user:create", "--email", "a@example.com"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/Missing --password[\s\S]*Usage: npm run admin -- user:create/);

    const badLimit = await runAdmin([
      "user:create",
      "--email",
      "b@example.com",
      "--password",
      "long password",
      "--limit",
      "lots",
    ]);
    expect(badLimit.status).toBe(2);
    expect(badLimit.stderr).toMatch(/--limit must be a whole number/);

    const unknown = await runAdmin(["user:destroy"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown command: user:destroy[\s\S]*Commands:/);
  });

  it("exits 1 with a readable message when the email is taken", async () => {
    await runAdmin(["user:create", "--email", "twice@example.com", "--password", "long password"]);
    const again = await runAdmin(["user:create", "--email", "twice@example.com", "--password", "long password"]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });
});
