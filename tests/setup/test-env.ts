import { loadRawEnv } from "~/utils/env.server";
import { databaseUrl as databaseUrlOn } from "../../scripts/lib/scratch-db";

/** Where the tests find the real services. Both can be overridden for machines that run them elsewhere. */
export const TEST_PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? loadRawEnv().REDIS_URL ?? "redis://127.0.0.1:6379";

export function databaseUrl(name: string): string {
  return databaseUrlOn(TEST_PG_ADMIN_URL, name);
}
