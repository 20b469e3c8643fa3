import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hashApiKey } from "~/models/api-keys.server";
import { getDb } from "~/utils/db.server";
import { createTestUser } from "./factories";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";

describe("admin CLI: key:create and sheet:import", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("creates a key and imports a sheet for a user, answering in JSON", async () => {
    const user = await createTestUser(getDb());

    const key = await runAdmin(["key:create", "--user", user.id, "--name", "Nightly export"]);
    expect(key.status).toBe(0);
    expect(key.json?.key).toMatch(/^sm_live_/);
    const stored = await getDb().apiKey.findUniqueOrThrow({ where: { hash: hashApiKey(String(key.json?.key)) } });
    expect(stored).toMatchObject({ userId: user.id, name: "Nightly export" });

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sm-cli-")), "prices.csv");
    fs.writeFileSync(file, "\uFEFFitem;price\nTea;3,5\nCake;4\n");
    const sheet = await runAdmin(["sheet:import", "--user", user.id, "--file", file]);
    expect(sheet.status).toBe(0);
    expect(sheet.json).toEqual({ sheetId: expect.any(String), rows: 2 });
    const created = await getDb().sheet.findUniqueOrThrow({ where: { id: String(sheet.json?.sheetId) } });
    expect(created).toMatchObject({ name: "prices", columns: ["item", "price"], rowCount: 2 });

    const bad = path.join(path.dirname(file), "bad.csv");
    fs.writeFileSync(bad, "a,a\n1,2\n");
    const refused = await runAdmin(["sheet:import", "--user", user.id, "--file", bad, "--name", "Bad"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/appears twice/);

    expect((await runAdmin(["key:create"])).status).toBe(2);
    expect((await runAdmin(["key:create", "--user", "nobody"])).status).toBe(1);
  });
});
