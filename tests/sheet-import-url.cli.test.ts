import { Client } from "@upstash/qstash";
import { afterAll, describe, expect, it } from "vitest";
import { startQstash } from "../dev/qstash";
import { sheetRefreshScheduleId } from "~/models/sheet-schedules.server";
import { getDb } from "~/utils/db.server";
import { loadRawEnv } from "~/utils/env.server";
import { createTestUser } from "./factories";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";
import { csvHandler, startSourceServer } from "./helpers/source-server";

/** `sheet:import --url`: the page's path from the command line, against a local source and the QStash stand-in. */
const raw = loadRawEnv();
const qstash = await startQstash({
  token: raw.QSTASH_TOKEN!,
  currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
  nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
  log: () => {},
});
const source = await startSourceServer();
const cliEnv = { QSTASH_URL: qstash.url, APP_URL: "http://127.0.0.1:9", SHEET_FETCH_ALLOW_LOOPBACK: "1" };
afterAll(async () => {
  await qstash.close();
  await source.close();
});

describe("admin CLI: sheet:import --url", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("fetches the URL, creates the sheet and its schedule, and prints them as JSON", async () => {
    source.handle("/team.csv", csvHandler("name,role\nAda,lead\nLin,dev\n", { etag: '"t1"' }));
    const user = await createTestUser(getDb());
    const result = await runAdmin(
      ["sheet:import", "--user", user.id, "--url", `${source.origin}/team.csv`, "--schedule", "hourly"],
      cliEnv,
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const sheetId = String(result.json?.sheetId);
    expect(result.json).toEqual({
      sheetId: expect.any(String),
      rows: 2,
      url: `${source.origin}/team.csv`,
      schedule: "hourly",
      scheduleId: sheetRefreshScheduleId(sheetId),
    });
    expect(await getDb().sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({
      name: "team",
      columns: ["name", "role"],
      rowCount: 2,
    });
    expect(qstash.schedules().find((s) => s.scheduleId === sheetRefreshScheduleId(sheetId))?.destination).toBe(
      "http://127.0.0.1:9/api/cron/refresh-sheet",
    );

    // Lost from QStash (a new project, a restarted stand-in): sheet:reschedule brings it back from Postgres.
    await new Client({ baseUrl: qstash.url, token: raw.QSTASH_TOKEN! }).schedules.delete(
      sheetRefreshScheduleId(sheetId),
    );
    const restored = await runAdmin(["sheet:reschedule"], cliEnv);
    expect(restored.status).toBe(0);
    expect(restored.json).toMatchObject({ failed: [] });
    expect(Number(restored.json?.restored)).toBeGreaterThanOrEqual(1);
    expect(qstash.schedules().some((s) => s.scheduleId === sheetRefreshScheduleId(sheetId))).toBe(true);
  });

  it("refuses what the page refuses, with the reason", async () => {
    const user = await createTestUser(getDb());
    const metadata = await runAdmin(
      ["sheet:import", "--user", user.id, "--url", "https://169.254.169.254/latest/meta-data/"],
      cliEnv,
    );
    expect(metadata.status).toBe(1);
    expect(metadata.stderr).toMatch(/Refused to connect to a link-local address/);
    // Loopback is refused unless the setting allows it.
    source.handle("/x.csv", csvHandler("a\n1\n"));
    const loopback = await runAdmin(["sheet:import", "--user", user.id, "--url", `${source.origin}/x.csv`], {
      ...cliEnv,
      SHEET_FETCH_ALLOW_LOOPBACK: "0",
    });
    expect(loopback.status).toBe(1);
    expect(loopback.stderr).toMatch(/Only https/);
    const both = await runAdmin(["sheet:import", "--user", user.id, "--url", "https://a.example", "--file", "x"]);
    expect(both.status).toBe(2);
    const badSchedule = await runAdmin([
      "sheet:import",
      "--user",
      user.id,
      "--url",
      "https://a.example",
      "--schedule",
      "weekly",
    ]);
    expect(badSchedule.status).toBe(2);
  });
});
