import { spawnSync } from "node:child_process";
import path from "node:path";

const TSX = path.resolve("node_modules/.bin/tsx");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The JSON object on the last stdout line, when there is one. */
  json: Record<string, unknown> | null;
}

/** Runs `npm run admin -- …` the way an operator would (a child process), against this test file's services. */
export function runAdmin(args: string[], env: Record<string, string | undefined> = {}): CliResult {
  const result = spawnSync(TSX, ["scripts/admin.ts", ...args], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  const lastLine = result.stdout.trim().split("\n").at(-1) ?? "";
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(lastLine);
  } catch {
    json = null;
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, json };
}
