import { parseArgs } from "node:util";
import { Client } from "@upstash/qstash";
import { z } from "zod";
import { SYNC_ROUTE_PATH as SYNC_PATH } from "~/utils/endpoints";
import { loadRawEnv } from "~/utils/env.server";
import { ensureHourlySchedule, HOURLY_CRON } from "./lib/schedule";

/**
 * `npm run qstash:schedule -- --url https://your.app` creates (or updates) the hourly QStash schedule that calls
 * the deployed app's usage sync. Reads QSTASH_URL and QSTASH_TOKEN like the app does (environment, then .env,
 * then .env.example); prints one JSON object as its last line.
 */
const USAGE = "Usage: npm run qstash:schedule -- --url https://your.app";

const qstashEnv = z.object({ QSTASH_URL: z.url(), QSTASH_TOKEN: z.string().min(1) });

async function main(): Promise<number> {
  let appUrl: string | undefined;
  try {
    appUrl = parseArgs({ options: { url: { type: "string" } }, strict: true }).values.url;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!appUrl || !URL.canParse(appUrl)) {
    console.error(`--url must be the app's public URL, e.g. https://sheetmeter.example.com\n${USAGE}`);
    return 2;
  }
  const env = qstashEnv.safeParse(loadRawEnv());
  if (!env.success) {
    console.error(`Set ${env.error.issues.map((issue) => issue.path.join(".")).join(", ")} (see .env.example).`);
    return 2;
  }

  const base = appUrl.replace(/\/+$/, "");
  const destination = base.endsWith(SYNC_PATH) ? base : `${base}${SYNC_PATH}`;
  const client = new Client({
    baseUrl: env.data.QSTASH_URL,
    token: env.data.QSTASH_TOKEN,
    devMode: false,
    enableTelemetry: false,
  });
  try {
    const scheduleId = await ensureHourlySchedule(client, destination);
    console.log(JSON.stringify({ scheduleId, destination, cron: HOURLY_CRON, qstashUrl: env.data.QSTASH_URL }));
    return 0;
  } catch (error) {
    console.error(`Could not create the schedule at ${env.data.QSTASH_URL}: ${(error as Error).message}`);
    return 1;
  }
}

process.exitCode = await main();
