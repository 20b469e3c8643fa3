import { randomBytes } from "node:crypto";
import { test as base, expect, type Page } from "@playwright/test";
import { createUser } from "../app/models/user.server";
import { createPrismaClient, type Db } from "../app/utils/db.server";

export interface TestUser {
  id: string;
  email: string;
  password: string;
}

/** A fresh email per test, so tests never trip over each other's accounts or log-in throttles. */
export function uniqueEmail(tag = "user"): string {
  return `${tag}-${randomBytes(5).toString("hex")}@e2e.example.com`;
}

export async function logIn(page: Page, user: { email: string; password: string }) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/dashboard/);
}

export const test = base.extend<{ user: TestUser; loggedInPage: Page }, { db: Db }>({
  // The app's own Prisma client against the e2e database, for fixtures that create and clean up data.
  db: [
    async ({}, use) => {
      const db = createPrismaClient(process.env.DATABASE_URL!);
      await use(db);
      await db.$disconnect();
    },
    { scope: "worker" },
  ],
  user: async ({ db }, use) => {
    const password = `pw-${randomBytes(8).toString("hex")}`;
    const created = await createUser(db, { email: uniqueEmail(), password });
    await use({ id: created.id, email: created.email, password });
    // Cascades to the user's keys, sheets, rows and snapshots.
    await db.user.deleteMany({ where: { id: created.id } });
  },
  loggedInPage: async ({ page, user }, use) => {
    await logIn(page, user);
    await use(page);
  },
});

export { expect };
