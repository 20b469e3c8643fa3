import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Redis as IORedis } from "ioredis";
import { quickBackoff, startQstash } from "../dev/qstash";
import { startRedisRest } from "../dev/redis-rest";
import { freePort } from "../dev/ports";
import { createScratchDatabase } from "../scripts/lib/scratch-db";
import { ALLOW_INSECURE_LOCAL, SHEET_FETCH_ALLOW_LOOPBACK } from "../app/utils/env.server";
import { TEST_PG_ADMIN_URL, TEST_REDIS_URL } from "../tests/setup/test-env";

// Redis logical database reserved for the browser tests (Vitest files claim 1–9, benches use 10–13, `npm run dev` 0).
const E2E_REDIS_DB = 15;

async function waitForHealthy(url: string, server: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`The app exited with code ${server.exitCode} before it was ready`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`The app did not answer ${url}/healthz within ${timeoutMs} ms`);
}

/**
 * Starts the built app (`remix build` ran before `playwright test`) the way production runs it, against its own
 * Postgres database, its own Redis keyspace behind the Upstash REST stand-in, and the QStash stand-in. Workers
 * inherit the environment set here, so fixtures and the admin CLI reach the same services.
 */
export default async function globalSetup() {
  const scratch = await createScratchDatabase(TEST_PG_ADMIN_URL, "sm_e2e");

  const flusher = new IORedis(TEST_REDIS_URL, { db: E2E_REDIS_DB });
  await flusher.flushdb();
  flusher.disconnect();
  const redisToken = `e2e-${randomBytes(8).toString("hex")}`;
  const rest = await startRedisRest({ redisUrl: TEST_REDIS_URL, token: redisToken, db: E2E_REDIS_DB });
  // Production refuses the example's public keys, so the stand-in and the app share keys made for this run.
  const secret = (prefix: string) => `${prefix}${randomBytes(16).toString("base64url")}`;
  const qstashKeys = {
    QSTASH_TOKEN: secret("e2e_qstash_"),
    QSTASH_CURRENT_SIGNING_KEY: secret("sig_e2e_"),
    QSTASH_NEXT_SIGNING_KEY: secret("sig_e2e_"),
  };
  const qstash = await startQstash({
    token: qstashKeys.QSTASH_TOKEN,
    currentSigningKey: qstashKeys.QSTASH_CURRENT_SIGNING_KEY,
    nextSigningKey: qstashKeys.QSTASH_NEXT_SIGNING_KEY,
    // Browser tests wait on retries; QStash's own spacing (12 s, then minutes) and a route's Retry-After would stall them.
    retryDelayMs: quickBackoff,
    maxRetryDelayMs: 1000,
  });

  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  // Every production-required variable, set here: production never falls back on .env.example. The app runs on
  // loopback over plain http against the stand-ins, which is what the escape hatch is for (see env.server.ts).
  const env = {
    DATABASE_URL: scratch.url,
    UPSTASH_REDIS_REST_URL: rest.url,
    UPSTASH_REDIS_REST_TOKEN: redisToken,
    QSTASH_URL: qstash.url,
    ...qstashKeys,
    APP_URL: appUrl,
    SESSION_SECRET: randomBytes(32).toString("base64url"),
    [ALLOW_INSECURE_LOCAL]: "1",
    // URL sheets' sources are served by the specs on loopback; production allows this only under the escape hatch above.
    [SHEET_FETCH_ALLOW_LOOPBACK]: "1",
    // As in the Vitest suite: these machines are shared, and a Redis round trip can outlast the production
    // deadline there (a sign-up then answers 503); no browser test is about that deadline.
    REDIS_TIMEOUT_MS: "5000",
  };
  Object.assign(process.env, env, { E2E_BASE_URL: appUrl });

  // `npm start`'s server, not a test double: the socket address, static headers and refusals tested are its own.
  const server = spawn(process.execPath, [path.resolve("server.js")], {
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1", NODE_ENV: "production" },
    stdio: "pipe",
  });
  const output: string[] = [];
  server.stdout?.on("data", (chunk) => output.push(String(chunk)));
  server.stderr?.on("data", (chunk) => output.push(String(chunk)));
  try {
    await waitForHealthy(appUrl, server);
  } catch (error) {
    server.kill();
    throw new Error(`${(error as Error).message}\n${output.join("")}`);
  }

  return async () => {
    server.kill("SIGTERM");
    await qstash.close();
    await rest.close();
    await scratch.drop();
    if (process.env.E2E_SERVER_LOG) console.log(output.join(""));
  };
}
