import { execFile } from "node:child_process";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { action } from "~/routes/api.cron.update-usage";
import { getEnv } from "~/utils/env.server";
import { quotaKey } from "~/utils/period";
import { signQstash } from "./helpers/qstash-sign";
import { syncFixtures } from "./helpers/sync-fixtures";

const fx = syncFixtures();

/**
 * `npm run admin -- …` as a child process. Asynchronous on purpose: this file's Upstash REST stand-in runs in this
 * process, and a spawnSync would block the very event loop that has to answer the child's Redis calls.
 */
function runAdminAsync(args: string[]) {
  return new Promise<{ status: number; stderr: string; json: Record<string, unknown> | null }>((resolve) => {
    execFile(
      path.resolve("node_modules/.bin/tsx"),
      ["scripts/admin.ts", ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) => {
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
        } catch {
          json = null;
        }
        resolve({ status: error ? Number(error.code ?? 1) : 0, stderr, json });
      },
    );
  });
}
afterAll(() => fx.close());

/** Snapshots without their hour, which is each run's own: what the two ways of syncing must agree on. */
async function valuesByUserAndPeriod() {
  const rows = await fx.db.usageSnapshot.findMany({ select: { userId: true, period: true, used: true } });
  return new Map(rows.map((row) => [`${row.userId}|${row.period}`, row.used]));
}

describe("npm run admin -- sync:run", () => {
  it("writes what the route writes and prints the run's summary as JSON", async () => {
    await fx.reset();
    const users = await fx.createUsers(1500);
    const thisMonth = new Date().toISOString().slice(0, 7);
    await fx.setCounts(thisMonth, new Map(users.map((id, i) => [id, i * 2 + 1])));
    await fx.raw.set(quotaKey("deleted-user", thisMonth), "9");

    const env = getEnv();
    const url = `${env.APP_URL}/api/cron/update-usage`;
    const signature = await signQstash({ key: env.QSTASH_CURRENT_SIGNING_KEY, url, body: "{}" });
    vi.spyOn(console, "info").mockImplementation(() => {});
    const response = await action({
      request: new Request(url, { method: "POST", headers: { "Upstash-Signature": signature }, body: "{}" }),
      params: {},
      context: {},
    });
    expect(response.status).toBe(200);
    const viaRoute = await response.json();
    const routeRows = await valuesByUserAndPeriod();

    await fx.db.$executeRaw`TRUNCATE "UsageSnapshot", "SyncRun"`;
    const cli = await runAdminAsync(["sync:run"]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.json).toMatchObject({
      status: "succeeded",
      users: 1500,
      skipped: 1,
      chunks: 1,
      seconds: expect.any(Number),
    });
    expect(cli.json).toMatchObject({ status: viaRoute.status, users: viaRoute.users, skipped: viaRoute.skipped });
    expect(await valuesByUserAndPeriod()).toEqual(routeRows);
    const [run] = await fx.runs();
    expect(run).toMatchObject({ id: cli.json!.runId, messageId: null, status: "succeeded" });
  });

  it("with --budget-ms runs the chunks back to back to the same end", async () => {
    const before = await valuesByUserAndPeriod();
    await fx.db.$executeRaw`TRUNCATE "UsageSnapshot", "SyncRun"`;
    const cli = await runAdminAsync(["sync:run", "--budget-ms", "0"]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.json).toMatchObject({ status: "succeeded", users: 1500 });
    expect(await valuesByUserAndPeriod()).toEqual(before);
  });
});
