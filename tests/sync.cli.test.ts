import { afterAll, describe, expect, it, vi } from "vitest";
import { action } from "~/routes/api.cron.update-usage";
import { getEnv } from "~/utils/env.server";
import { quotaKey } from "~/utils/period";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";
import { signQstash } from "./helpers/qstash-sign";
import { syncFixtures } from "./helpers/sync-fixtures";

const fx = syncFixtures();

afterAll(() => fx.close());

/** Snapshots without their hour, which is each run's own: what the two ways of syncing must agree on. */
async function valuesByUserAndPeriod() {
  const rows = await fx.db.usageSnapshot.findMany({ select: { userId: true, period: true, used: true } });
  return new Map(rows.map((row) => [`${row.userId}|${row.period}`, row.used]));
}

describe("npm run admin -- sync:run", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
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

    await fx.db.$executeRaw`TRUNCATE "UsageSnapshot", "SyncRun", "UsagePeriodFinal"`;
    const cli = await runAdmin(["sync:run"]);
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
    await fx.db.$executeRaw`TRUNCATE "UsageSnapshot", "SyncRun", "UsagePeriodFinal"`;
    const cli = await runAdmin(["sync:run", "--budget-ms", "0"]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.json).toMatchObject({ status: "succeeded", users: 1500 });
    expect(await valuesByUserAndPeriod()).toEqual(before);
  });
});
