import { execFile } from "node:child_process";
import path from "node:path";

const TSX = path.resolve("node_modules/.bin/tsx");

/**
 * For test files that run the admin CLI: each run starts tsx cold (2–5 s, several times that on a busy two-core
 * machine), and a test runs up to five of them, far past the suite's 30 s default.
 */
export const CLI_TEST_TIMEOUT_MS = 120_000;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  /** The JSON object on the last stdout line, when there is one. */
  json: Record<string, unknown> | null;
}

/**
 * Runs `npm run admin -- …` the way an operator would (a child process), against this test file's services.
 * Asynchronous on purpose: the file's Upstash REST stand-in runs in the test process, and a synchronous spawn would
 * block the very event loop that has to answer the child's Redis calls.
 */
export function runAdmin(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      ["scripts/admin.ts", ...args],
      { env: { ...process.env, ...env }, timeout: 60_000, encoding: "utf8" },
      (error, stdout, stderr) => {
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
        } catch {
          json = null;
        }
        const status = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ status, stdout, stderr, json });
      },
    );
  });
}
