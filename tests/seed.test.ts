import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { getDb } from "~/utils/db.server";
import { CLI_TEST_TIMEOUT_MS } from "./helpers/cli";

const TSX = path.resolve("node_modules/.bin/tsx");

function runSeed(env: Record<string, string>): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ["scripts/seed.ts"], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, _out, stderr) =>
      resolve({ status: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr: String(stderr) }),
    );
  });
}

describe("npm run db:seed", () => {
  it(
    "refuses NODE_ENV=production in one sentence and creates no demo account",
    async () => {
      // This file's own database is reachable: only the guard can stop the seed here.
      const result = await runSeed({ NODE_ENV: "production" });
      expect(result.status).toBe(1);
      expect(result.stderr.trim()).toBe(
        "db:seed refuses to run with NODE_ENV=production: it creates a demo account whose password is public.",
      );
      expect(await getDb().user.count({ where: { email: "demo@sheetmeter.local" } })).toBe(0);
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
