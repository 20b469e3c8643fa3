import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../../dev/ports";
import { CLI_TEST_TIMEOUT_MS } from "../../tests/helpers/cli";
import { requireReachableDatabase } from "./database";

const TSX = path.resolve("node_modules/.bin/tsx");

/** Runs a script as `npm run …` would, with `overrides` applied to this test file's environment. */
function runScript(script: string, args: string[], overrides: Record<string, string | undefined>) {
  const env = { ...process.env, ...overrides };
  for (const [name, value] of Object.entries(overrides)) if (value === undefined) delete env[name];
  return new Promise<{ status: number; stderr: string }>((resolve) => {
    execFile(
      TSX,
      [script, ...args],
      { env, timeout: CLI_TEST_TIMEOUT_MS, encoding: "utf8" },
      (error, _stdout, stderr) => {
        resolve({ status: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr });
      },
    );
  });
}

const commands: Array<[string, string, string[]]> = [
  ["npm run admin", "scripts/admin.ts", ["sync:run"]],
  ["npm run db:seed", "scripts/seed.ts", []],
  ["npm run db:migrate", "scripts/migrate.ts", []],
];

// Concurrent: each case is a separate process that spends its seconds starting up.
describe.concurrent("a command run without its database", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  // NODE_ENV=test (set for every test file) keeps a developer's running `npm run dev` out of these runs.
  it.each(commands)("%s says in one sentence what to do", async (_name, script, args) => {
    const result = await runScript(script, args, { DATABASE_URL: undefined });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/DATABASE_URL is not set.*start `npm run dev` in another terminal or set DATABASE_URL\.$/),
    ]);
  });

  it.each(commands)("%s names the database it cannot reach", async (_name, script, args) => {
    const port = await freePort();
    const result = await runScript(script, args, { DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/gone` });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(
        new RegExp(`Cannot reach the database at 127\\.0\\.0\\.1:${port}/gone \\(connection refused\\)`),
      ),
    ]);
  });

  it("goes on once the database answers", async () => {
    await expect(requireReachableDatabase()).resolves.toBe(process.env.DATABASE_URL);
  });
});
