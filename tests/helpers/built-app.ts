import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/**
 * For Vitest files that need the production build served by server.js, as deployed (two app processes sharing
 * one Redis and one Postgres, say). `remix build` runs before e2e only, so such a file builds the app itself, into
 * a directory of its own (remix.config.js reads SHEETMETER_BUILD_DIR): `build/` may be in use by e2e or a bench.
 * Inside node_modules so the build's bare imports resolve to the project's packages. Takes 10–60 s.
 */
export const BUILD_TIMEOUT_MS = 180_000;

export async function buildAppForTest(): Promise<{ serverBuild: string; remove(): Promise<void> }> {
  const dir = path.resolve("node_modules/.cache", `sheetmeter-test-build-${randomBytes(4).toString("hex")}`);
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [path.resolve("node_modules/@remix-run/dev/dist/cli.js"), "build"],
      { env: { ...process.env, NODE_ENV: "production", SHEETMETER_BUILD_DIR: dir }, timeout: BUILD_TIMEOUT_MS },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`remix build failed: ${stderr || error.message}`)) : resolve(),
    );
  });
  return { serverBuild: path.join(dir, "index.js"), remove: () => fs.rm(dir, { recursive: true, force: true }) };
}
