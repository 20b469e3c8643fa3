import { expect, logIn, test, uniqueEmail } from "./fixtures";

test("a visitor signs up, lands on the dashboard, logs out and logs in again", async ({ page, db }) => {
  const email = uniqueEmail("signup");
  const password = "correct horse battery";
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/dashboard");
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Fdashboard/);

  await logIn(page, { email, password });
  await expect(page.getByRole("button", { name: "Log out" })).toBeVisible();
  await db.user.deleteMany({ where: { email } });
});

test("sign-up mistakes are shown next to the field", async ({ page, user, consoleGuard }) => {
  consoleGuard.allowStatus(400, "the sign-up form answers its mistakes with 400");
  await page.goto("/signup");
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page.getByText("Enter a valid email address")).toBeVisible();
  await expect(page.getByText("Use at least 10 characters.")).toBeVisible();

  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill("long enough password");
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page.getByText("That email already has an account")).toBeVisible();
});

test("log-in brings the user back to the page they asked for", async ({ page, user }) => {
  await page.goto("/keys");
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Fkeys/);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/keys$/);
});

test("unknown pages get the designed 404", async ({ page, consoleGuard }) => {
  consoleGuard.allowStatus(404, "the page under test is the 404");
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});
