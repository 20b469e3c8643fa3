import { Redis as IORedis } from "ioredis";
import pg from "pg";
import { createTestApiKey, createTestSheet } from "../tests/factories";
import { TEST_REDIS_URL } from "../tests/setup/test-env";
import { expect, test, uniqueEmail } from "./fixtures";

/**
 * The Account part of /settings, and the error pages, in a real browser against the built app: a customer changes
 * their email and then deletes the account, after which Postgres (every table) and Redis (every key) are searched
 * for anything of it, straight from this test with `pg` and `ioredis`, not through the app.
 */

// global-setup gives the browser tests Redis database 15 behind the REST stand-in the app uses.
const E2E_REDIS_DB = 15;
// The account's cache version outlives it by a minute (DELETED_ACCOUNT_VERSION_TTL_SECONDS) so that API processes
// drop what they hold in memory; the search waits for it to go, so that "nothing" means nothing.
const VERSION_GRACE_MS = 75_000;

async function shot(
  page: import("@playwright/test").Page,
  name: string,
  testInfo: import("@playwright/test").TestInfo,
) {
  await testInfo.attach(name, {
    body: await page.screenshot({ fullPage: true, path: `test-results/${name}.png` }),
    contentType: "image/png",
  });
}

/** Rows of any table whose JSON mentions one of `tokens` (tables added later are searched too). */
async function postgresMentions(tokens: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `SELECT quote_ident(table_name) AS name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const found: string[] = [];
    for (const { name } of tables) {
      for (const token of tokens) {
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${name} t WHERE strpos(row_to_json(t)::text, $1) > 0`,
          [token],
        );
        if (rows[0].n !== "0") found.push(`${name}: ${rows[0].n} row(s) mention ${token}`);
      }
    }
    return found;
  } finally {
    await client.end();
  }
}

/** Redis keys whose name or string value mentions a token; short-lived records that name no account are skipped. */
async function redisMentions(redis: IORedis, tokens: string[]): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "COUNT", 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === "string"
          ? await redis.get(key)
          : type === "hash"
            ? JSON.stringify(await redis.hgetall(key))
            : type === "set"
              ? JSON.stringify(await redis.smembers(key))
              : "";
      if (tokens.some((token) => key.includes(token) || value?.includes(token))) found.push(`${key} = ${value}`);
    }
  } while (cursor !== "0");
  return found;
}

test("a customer changes their email, then deletes the account, and nothing of it is left", async ({
  loggedInPage: page,
  user,
  db,
  consoleGuard,
}, testInfo) => {
  consoleGuard.allowStatus(400, "the settings forms answer a wrong password with 400");
  test.setTimeout(VERSION_GRACE_MS + 60_000);
  // Something in every store: a key that has been used, a sheet with rows, counters in Redis.
  const { key, summary } = await createTestApiKey(db, user.id, "e2e");
  const { sheetId } = await createTestSheet(db, user.id, { name: "people", csv: "id,name\n1,Ada\n2,Grace\n" });
  const call = () => page.request.get(`/api/v1/sheets/${sheetId}`, { headers: { Authorization: `Bearer ${key}` } });
  expect((await call()).status()).toBe(200);

  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto("/settings");
  const account = page.getByRole("region", { name: "Account", exact: true });
  await expect(account.getByTestId("account-email")).toHaveText(user.email);
  await expect(account).toContainText("free");
  await expect(account).toContainText("1,000 API calls");

  // A wrong password is refused next to the field; the right one moves the account, and the header follows.
  const newEmail = uniqueEmail("moved");
  await account.getByLabel("New email").fill(newEmail);
  await account.getByLabel("Password").fill("not my password");
  await account.getByRole("button", { name: "Change email" }).click();
  await expect(account.getByText("That is not your password.")).toBeVisible();
  await account.getByLabel("Password").fill(user.password);
  await account.getByRole("button", { name: "Change email" }).click();
  await expect(account.getByRole("status")).toHaveText(`Your email is now ${newEmail}; use it to log in.`);
  await expect(account.getByTestId("account-email")).toHaveText(newEmail);
  await expect(page.getByRole("banner")).toContainText(newEmail);
  await shot(page, "settings-account-desktop", testInfo);

  // On a phone the section fits the width.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
    .toBeLessThanOrEqual(0);
  await shot(page, "settings-account-phone", testInfo);

  // Deleting asks for the email typed out and the password.
  const danger = page.getByRole("region", { name: "Delete my account" });
  await danger.getByText("Delete my account…").click();
  await danger.getByLabel(/Type your email/).fill(user.email);
  await danger.getByLabel("Password").fill(user.password);
  await danger.getByRole("button", { name: "Delete my account and its data" }).click();
  await expect(danger.getByText(`Type ${newEmail} exactly, to confirm.`)).toBeVisible();
  await shot(page, "settings-delete-account-phone", testInfo);
  await danger.getByLabel(/Type your email/).fill(newEmail);
  await danger.getByRole("button", { name: "Delete my account and its data" }).click();

  // Signed out, on the home page, told what happened — once.
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("status")).toContainText("Your account and everything in it have been deleted.");
  await expect(page.getByRole("banner").getByRole("link", { name: "Log in" })).toBeVisible();
  await shot(page, "account-deleted-phone", testInfo);
  await page.reload();
  await expect(page.getByRole("heading", { name: "Your spreadsheet, as a JSON API" })).toBeVisible();
  await expect(page.getByText("have been deleted")).toHaveCount(0);
  await page.goto("/settings");
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Fsettings/);

  // The key is refused at once.
  expect((await call()).status()).toBe(401);

  // Nothing of the account in Postgres, in any table.
  const tokens = [user.id, user.email, newEmail, summary.id, key, sheetId];
  expect(await postgresMentions(tokens)).toEqual([]);

  // Nor in Redis, once the cache version's minute is over (consumption records expire in a minute too).
  const redis = new IORedis(TEST_REDIS_URL, { db: E2E_REDIS_DB });
  try {
    await expect
      .poll(() => redisMentions(redis, tokens), { timeout: VERSION_GRACE_MS, intervals: [5_000] })
      .toEqual([]);
  } finally {
    redis.disconnect();
  }
});

test("a signed-out visitor's 404 offers the home page and log-in", async ({ page, consoleGuard }, testInfo) => {
  consoleGuard.allowStatus(404, "the page under test is the 404");
  await page.setViewportSize({ width: 1280, height: 900 });
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  const panel = page.getByRole("alert");
  await expect(panel.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await expect(panel.getByRole("link", { name: "Go to the home page" })).toHaveAttribute("href", "/");
  await expect(page.getByRole("banner").getByRole("link", { name: "Log in" })).toBeVisible();
  await shot(page, "not-found-visitor-desktop", testInfo);
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "not-found-visitor-phone", testInfo);
  await panel.getByRole("link", { name: "Go to the home page" }).click();
  await expect(page.getByRole("heading", { name: "Your spreadsheet, as a JSON API" })).toBeVisible();
});

test("a signed-in customer's 404 keeps their header and offers the dashboard, never log-in", async ({
  loggedInPage: page,
  user,
  consoleGuard,
}, testInfo) => {
  consoleGuard.allowStatus(404, "the page under test is the 404");
  await page.setViewportSize({ width: 1280, height: 900 });
  const response = await page.goto("/sheets/no-such-sheet/anything");
  expect(response?.status()).toBe(404);
  const header = page.getByRole("banner");
  await expect(header).toContainText(user.email);
  await expect(header.getByRole("link", { name: "Dashboard" })).toBeVisible();
  await expect(header.getByRole("button", { name: "Log out" })).toBeVisible();
  await expect(page.getByRole("link", { name: /Log in|Sign up/ })).toHaveCount(0);
  const panel = page.getByRole("alert");
  await expect(panel).toContainText("go back to your dashboard");
  await shot(page, "not-found-signed-in-desktop", testInfo);
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(header.getByRole("link", { name: "Dashboard" })).toBeVisible();
  await shot(page, "not-found-signed-in-phone", testInfo);
  await panel.getByRole("link", { name: "Go to the dashboard" }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
});
