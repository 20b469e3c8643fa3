import { randomBytes } from "node:crypto";
import { createApiKey } from "~/models/api-keys.server";
import { importSheet } from "~/models/csv-import.server";
import { createUser, type PublicUser } from "~/models/user.server";
import type { Db } from "~/utils/db.server";

/**
 * Users, keys and sheets made through the app's own model functions, so test data looks exactly like what sign-up,
 * the keys page and an upload would have stored. Each takes the Prisma client, so Vitest (the file's own database)
 * and Playwright (the e2e server's database) share them.
 */

export type TestUser = PublicUser & { password: string };

/** Random, so files running in parallel against shared services never collide on an email. */
export function uniqueTestEmail(tag = "user", domain = "example.com"): string {
  return `${tag}-${randomBytes(6).toString("hex")}@${domain}`;
}

/** A user who can log in with the returned password. */
export async function createTestUser(
  db: Db,
  options: { email?: string; password?: string; monthlyLimit?: number } = {},
): Promise<TestUser> {
  const password = options.password ?? `pw-${randomBytes(8).toString("hex")}`;
  const user = await createUser(db, {
    email: options.email ?? uniqueTestEmail(),
    password,
    monthlyLimit: options.monthlyLimit,
  });
  return { ...user, password };
}

/** A live key for `userId`; `key` is the secret a caller sends, shown once in the app. */
export function createTestApiKey(db: Db, userId: string, name = "tests") {
  return createApiKey(db, userId, name);
}

/**
 * A sheet imported from `csv` as an upload would be, rows and all. `createdAt` pins its upload time, for tests of
 * ordering: imports a millisecond apart can share a timestamp.
 */
export async function createTestSheet(
  db: Db,
  userId: string,
  options: { name?: string; csv?: string; createdAt?: Date } = {},
) {
  const imported = await importSheet(db, {
    userId,
    name: options.name ?? "sheet",
    bytes: new TextEncoder().encode(options.csv ?? "a\n1\n"),
  });
  if (options.createdAt) {
    await db.sheet.update({ where: { id: imported.sheetId }, data: { createdAt: options.createdAt } });
  }
  return imported;
}
