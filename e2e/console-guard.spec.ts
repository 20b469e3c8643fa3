import { test } from "./fixtures";

/**
 * The guard itself: each of these tests must fail (test.fail), because the fixture's check after the test finds the
 * message. Were the guard broken, they would pass, and Playwright would report them as failures.
 */

test("a console error fails the test", async ({ page }) => {
  test.fail();
  await page.goto("/");
  await page.evaluate(() => console.error("deliberate error"));
});

test("a hydration warning fails the test", async ({ page }) => {
  test.fail();
  await page.goto("/");
  await page.evaluate(() =>
    console.warn("Warning: Extra attributes from the server: %s", "maxlength\n    at input\n    at Field"),
  );
});

test("an uncaught error in the page fails the test", async ({ page }) => {
  test.fail();
  await page.goto("/");
  await page.evaluate(() =>
    setTimeout(() => {
      throw new Error("deliberate");
    }, 0),
  );
  await page.waitForTimeout(100);
});

test("an allowed status does not fail the test, and only that status is allowed", async ({ page, consoleGuard }) => {
  consoleGuard.allowStatus(404, "the page under test is the 404");
  await page.goto("/no-such-page");
});
