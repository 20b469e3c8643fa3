import { test as base, expect, type Page } from "@playwright/test";
import { createPrismaClient, type Db } from "../app/utils/db.server";
import { HOUR_MS, hourBucket, periodOf } from "../app/utils/period";
import { createUserSession } from "../app/utils/session.server";
import { createTestUser, type TestUser, uniqueTestEmail } from "../tests/factories";

export type { TestUser };

/** A fresh email per test, so tests never trip over each other's accounts or log-in throttles. */
export function uniqueEmail(tag = "user"): string {
  return uniqueTestEmail(tag, "e2e.example.com");
}

export async function logIn(page: Page, user: { email: string; password: string }) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/dashboard/);
}

/**
 * Signs `userId` in the way a successful log-in would: the app's own code writes the session row (through this
 * worker's client of the e2e database) and signs its id (this worker has the server's SESSION_SECRET from
 * global-setup), and the cookie goes into the browser for the app's origin. Only e2e/auth.spec.ts needs to pay for the log-in form.
 */
async function signInByCookie(page: Page, db: Db, userId: string, baseURL: string) {
  const response = await createUserSession(new Request(`${baseURL}/login`), userId, "/dashboard", { db });
  const setCookie = response.headers.get("Set-Cookie");
  if (!setCookie) throw new Error("the app committed no session cookie");
  const [pair] = setCookie.split(";");
  const separator = pair.indexOf("=");
  await page.context().addCookies([
    {
      name: pair.slice(0, separator),
      value: pair.slice(separator + 1),
      url: baseURL,
      httpOnly: true,
      sameSite: "Lax",
    },
  ]);
}

/**
 * Any console error, any React hydration warning and any uncaught page error fails the test that caused it, so a
 * regression such as a server-only constant rendered into an attribute cannot slip in unnoticed. A test that
 * provokes an error on purpose (a 404 page logs the failed document load) says so with `consoleGuard.allow(…)`.
 */
export interface ConsoleGuard {
  /** Lets messages matching `pattern` through for the rest of this test; `reason` documents why. */
  allow(pattern: RegExp, reason: string): void;
  /**
   * Chromium logs every answer of `status` as "Failed to load resource"; a test that expects one (a form's 400, a
   * 404 page) lets exactly that status through, and every other error still fails it.
   */
  allowStatus(status: number, reason: string): void;
}

// React's hydration warnings in development, and its minified recoverable errors (#418, #423, #425) in production.
const HYDRATION = /hydrat|did not match|extra attributes from the server|Minified React error #4(18|19|22|23|25)/i;

export const test = base.extend<{ user: TestUser; loggedInPage: Page; consoleGuard: ConsoleGuard }, { db: Db }>({
  consoleGuard: [
    async ({ page }, use) => {
      const problems: string[] = [];
      const allowed: RegExp[] = [];
      const record = (text: string) => {
        if (!allowed.some((pattern) => pattern.test(text))) problems.push(text);
      };
      page.on("console", (message) => {
        const text = message.text();
        const where = message.location().url ? ` (${message.location().url})` : "";
        if (message.type() === "error") record(`console error: ${text}${where}`);
        else if (message.type() === "warning" && HYDRATION.test(text)) record(`hydration warning: ${text}${where}`);
      });
      page.on("pageerror", (error) => record(`page error: ${error.message}`));
      await use({
        allow: (pattern) => void allowed.push(pattern),
        allowStatus: (status) =>
          void allowed.push(
            new RegExp(`^console error: Failed to load resource: the server responded with a status of ${status} `),
          ),
      });
      expect(problems, "the page logged errors or hydration warnings").toEqual([]);
    },
    { auto: true },
  ],

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
    const user = await createTestUser(db, { email: uniqueEmail() });
    await use(user);
    // Cascades to the user's keys, sheets, rows and snapshots.
    await db.user.deleteMany({ where: { id: user.id } });
  },
  loggedInPage: async ({ page, db, user, baseURL }, use) => {
    await signInByCookie(page, db, user.id, baseURL!);
    await use(page);
  },
});

/** `hours` of persisted hourly usage up to this hour, growing by `perHour` each hour, so the chart has points to draw. */
export async function seedHourlyHistory(db: Db, userId: string, hours: number, perHour: number): Promise<void> {
  const now = hourBucket(new Date());
  await db.usageSnapshot.createMany({
    data: Array.from({ length: hours }, (_, i) => {
      const hour = new Date(now.getTime() - (hours - 1 - i) * HOUR_MS);
      return { userId, period: periodOf(hour), hour, used: (i + 1) * perHour };
    }),
  });
}

/** The same hourly history for one of the user's keys (KeyUsageSnapshot), so the chart can be drawn for that key. */
export async function seedKeyHourlyHistory(
  db: Db,
  userId: string,
  keyId: string,
  hours: number,
  perHour: number,
): Promise<void> {
  const now = hourBucket(new Date());
  await db.keyUsageSnapshot.createMany({
    data: Array.from({ length: hours }, (_, i) => {
      const hour = new Date(now.getTime() - (hours - 1 - i) * HOUR_MS);
      return { keyId, userId, period: periodOf(hour), hour, used: (i + 1) * perHour };
    }),
  });
}

export { expect };
