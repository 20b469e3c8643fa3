import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "~/generated/prisma/client";
import { getEnv } from "./env.server";

export type Db = PrismaClient;

export function createPrismaClient(databaseUrl: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}

// One client per process; the dev server re-imports modules on every change, so the instance lives on globalThis
// instead of leaking a new pool per rebuild.
const globalForDb = globalThis as unknown as { __sheetmeterDb?: PrismaClient };

export function getDb(): PrismaClient {
  globalForDb.__sheetmeterDb ??= createPrismaClient(getEnv().DATABASE_URL);
  return globalForDb.__sheetmeterDb;
}
