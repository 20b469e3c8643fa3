import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis as IORedis } from "ioredis";
import type { TestProject } from "vitest/node";
import { migrate } from "../../scripts/lib/migrations";
import { databaseUrl, TEST_PG_ADMIN_URL, TEST_REDIS_URL } from "./test-env";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Migrates one template database per run; every test file then gets its own copy (CREATE DATABASE … TEMPLATE is
 * far faster than migrating again), so files run in parallel without seeing each other's rows.
 */
export default async function setup(project: TestProject) {
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`Tests need Postgres at ${TEST_PG_ADMIN_URL} (set TEST_PG_ADMIN_URL): ${(error as Error).message}`);
  }
  const redis = new IORedis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Tests need Redis at ${TEST_REDIS_URL} (set TEST_REDIS_URL): ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }

  // Databases left behind by an interrupted run are dropped so they do not pile up; their names carry their
  // creation time, and only those older than a day go, so a concurrent run's databases are left alone.
  const { rows } = await admin.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname ~ '^sm_(test|tmpl)_[0-9]+_'",
  );
  const dayAgo = Math.floor(Date.now() / 1000) - 86_400;
  for (const { datname } of rows) {
    if (Number(datname.split("_")[2]) < dayAgo) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }

  const template = `sm_tmpl_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString("hex")}`;
  await admin.query(`CREATE DATABASE "${template}"`);
  await migrate(databaseUrl(template));
  project.provide("templateDatabase", template);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin.end();
  };
}
