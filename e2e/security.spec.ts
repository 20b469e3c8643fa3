import http from "node:http";
import type { Page } from "@playwright/test";
import { CROSS_SITE_REFUSAL_MESSAGE } from "../app/utils/request-guard.server";
import { expect, seedHourlyHistory, test } from "./fixtures";

/**
 * Issue 11, in a real browser against the built server: every page works under the CSP without a single
 * violation, every kind of answer carries the security headers, and a cross-site POST with the cookie is refused.
 */

/** Records CSP violations and console errors from the first script the page runs. */
async function watchForViolations(page: Page): Promise<string[]> {
  const problems: string[] = [];
  await page.exposeFunction("__reportViolation", (text: string) => problems.push(text));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      (window as unknown as { __reportViolation(text: string): void }).__reportViolation(
        `CSP violation on ${document.location.pathname}: ${event.violatedDirective} blocked ${event.blockedURI} at ${event.sourceFile}:${event.lineNumber}`,
      );
    });
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

function expectSecurityHeaders(headers: Record<string, string>, kind: "document" | "other") {
  const csp = headers["content-security-policy"];
  expect(csp).toContain("frame-ancestors 'none'");
  if (kind === "document") expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{16,}'/);
  else expect(csp).toContain("default-src 'none'");
  expect(headers["x-frame-options"]).toBe("DENY");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("strict-origin-when-cross-origin");
  expect(headers["permissions-policy"]).toContain("camera=()");
  // global-setup runs the server with NODE_ENV=production.
  expect(headers["strict-transport-security"]).toMatch(/max-age=\d+/);
}

test("the signed-out pages run under the CSP without a violation", async ({ page }) => {
  const problems = await watchForViolations(page);
  for (const path of ["/", "/login"]) {
    const response = await page.goto(path);
    expectSecurityHeaders(response!.headers(), "document");
  }
  // Client-side navigation proves the hydrated app runs: the link is handled by Remix's scripts.
  await page.getByRole("link", { name: "Create an account" }).click();
  await expect(page).toHaveURL(/\/signup/);
  expect(problems).toEqual([]);
});

test("the signed-in pages, the chart and the forms run under the CSP without a violation", async ({
  loggedInPage: page,
  user,
  db,
}) => {
  await seedHourlyHistory(db, user.id, 24, 3);
  const problems = await watchForViolations(page);

  const dashboard = await page.goto("/dashboard");
  expectSecurityHeaders(dashboard!.headers(), "document");
  expect(dashboard!.headers()["cache-control"]).toBe("private, no-store");
  const chart = page.getByTestId("usage-chart").locator(".recharts-surface");
  await expect(chart).toBeVisible();
  // The tooltip is where recharts writes inline styles.
  await chart.hover();
  // The bar views draw and show their tooltip under the same policy.
  await page.getByRole("link", { name: "Per hour" }).click();
  await expect(page.getByTestId("usage-chart")).toHaveAttribute("data-view", "hour");
  await expect(page.getByTestId("usage-chart").locator(".recharts-bar-rectangle").first()).toBeVisible();
  await chart.hover();
  const csv = await page.request.get("/dashboard/usage.csv?range=24h&view=hour");
  expect(csv.status()).toBe(200);
  expectSecurityHeaders(csv.headers(), "other");
  expect(csv.headers()["cache-control"]).toBe("private, no-store");

  await page.goto("/sheets");
  await page.getByLabel("CSV file").setInputFiles({
    name: "csp.csv",
    mimeType: "text/csv",
    buffer: Buffer.from("a,b\n1,2\n"),
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByText("Imported 1 row")).toBeVisible();

  await page.goto("/keys");
  // Submitted by Remix over fetch (a .data request), so it also proves the same-origin check lets our own pages by.
  const dataResponse = page.waitForResponse((response) => response.url().includes("/keys.data"));
  await page.getByLabel("Name").fill("csp");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("new-api-key")).toBeVisible();
  const data = await dataResponse;
  expectSecurityHeaders(await data.allHeaders(), "other");
  expect((await data.allHeaders())["cache-control"]).toBe("private, no-store");

  expect(problems).toEqual([]);
});

test("API answers, error pages and health carry the headers too", async ({ request }) => {
  const api = await request.get("/api/v1/sheets/unknown");
  expect(api.status()).toBe(401);
  expectSecurityHeaders(api.headers(), "other");

  const missing = await request.get("/no-such-page");
  expect(missing.status()).toBe(404);
  expectSecurityHeaders(missing.headers(), "document");

  const health = await request.get("/healthz");
  expectSecurityHeaders(health.headers(), "other");
});

test("a cross-site POST with a valid cookie creates no key (the issue's probe)", async ({
  loggedInPage: page,
  user,
  db,
  baseURL,
}) => {
  const cookies = await page.context().cookies();
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join("; ");
  const forged = { Cookie: cookie, Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" };
  for (const path of ["/keys.data", "/keys?_data=routes%2Fkeys", "/keys"]) {
    const response = await page.request.post(`${baseURL}${path}`, {
      headers: forged,
      form: { intent: "create", name: "forged" },
      maxRedirects: 0,
    });
    expect(response.status(), path).toBe(403);
  }
  expect(await db.apiKey.count({ where: { userId: user.id } })).toBe(0);
});

test("a forged plain (no-JavaScript) form post gets the designed 403 page, not Remix's empty 500", async ({
  loggedInPage: page,
  user,
  db,
  baseURL,
  consoleGuard,
}) => {
  consoleGuard.allowStatus(403, "the page under test is the refusal of a forged post");
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  // Remix refuses an Origin that differs from Host before any hook of ours; server.js asks the app's guard first.
  const forged = await page.request.post(`${baseURL}/keys`, {
    headers: { Cookie: cookie, Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" },
    form: { intent: "create", name: "forged" },
    maxRedirects: 0,
  });
  expect(forged.status()).toBe(403);
  expect(forged.headers()["content-type"]).toMatch(/^text\/html/);
  expectSecurityHeaders(forged.headers(), "document");
  expect(await forged.text()).toContain(CROSS_SITE_REFUSAL_MESSAGE);
  expect(await db.apiKey.count({ where: { userId: user.id } })).toBe(0);

  // In a browser: a page on another site submits a form to ours. The browser leaves the Lax cookie out of a
  // cross-site POST; the server refuses it on its Origin anyway, with the app's page, which loads without a fault.
  await page.route("https://evil.example/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<form method="post" action="${baseURL}/keys"><input name="intent" value="create">
        <input name="name" value="forged"></form><script>document.forms[0].submit()</script>`,
    }),
  );
  const problems = await watchForViolations(page);
  const refused = page.waitForResponse((response) => response.url() === `${baseURL}/keys`);
  await page.goto("https://evil.example/", { waitUntil: "commit" });
  expect((await refused).status()).toBe(403);
  await expect(page.getByRole("heading", { name: "That did not work" })).toBeVisible();
  await expect(page.getByText(CROSS_SITE_REFUSAL_MESSAGE)).toBeVisible();
  // Chromium logs the refused navigation's status itself; nothing else may show up (no CSP violation, no error).
  expect(problems.filter((problem) => !problem.includes("status of 403 (Forbidden)"))).toEqual([]);
  expect(await db.apiKey.count({ where: { userId: user.id } })).toBe(0);

  // The same plain post from our own origin goes through to the action.
  const own = await page.request.post(`${baseURL}/keys`, {
    headers: { Cookie: cookie, Origin: new URL(baseURL!).origin, "Sec-Fetch-Site": "same-origin" },
    form: { intent: "create", name: "plain" },
    maxRedirects: 0,
  });
  expect(own.status()).toBe(200);
  expect(await db.apiKey.count({ where: { userId: user.id } })).toBe(1);
});

test("static files carry the security headers and a cache policy that fits their names", async ({ request }) => {
  const favicon = await request.get("/favicon.ico");
  expect(favicon.status()).toBe(200);
  expectSecurityHeaders(favicon.headers(), "other");
  // Its name does not change across deploys, so caches check back within the hour.
  expect(favicon.headers()["cache-control"]).toBe("public, max-age=3600");

  const login = await (await request.get("/login")).text();
  const stylesheet = login.match(/href="(\/build\/[^"]+\.css)"/)?.[1];
  const script = login.match(/src="(\/build\/[^"]+\.js)"/)?.[1] ?? login.match(/import\("(\/build\/[^"]+\.js)"/)?.[1];
  expect(stylesheet).toBeTruthy();
  expect(script).toBeTruthy();
  for (const asset of [stylesheet!, script!]) {
    const response = await request.get(asset);
    expect(response.status(), asset).toBe(200);
    expectSecurityHeaders(response.headers(), "other");
    // Fingerprinted: a new build is a new URL, so a year and immutable.
    expect(response.headers()["cache-control"], asset).toBe("public, max-age=31536000, immutable");
  }

  // A miss under /build falls through to the app's own 404 page, with the page headers.
  const missing = await request.get("/build/no-such-file.js");
  expect(missing.status()).toBe(404);
  expectSecurityHeaders(missing.headers(), "document");
});

test("a 50 MB chunked log-in body gets a quick 413", async ({ baseURL }) => {
  const url = new URL("/login", baseURL);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked" },
    });
    req.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
      req.destroy();
    });
    // The server may close the connection before all 50 MB are written; only the answer matters here.
    req.on("error", (error) => (req.destroyed ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    const pump = () => {
      while (written < 50 * 1024 * 1024 && !req.destroyed) {
        written += chunk.length;
        if (!req.write(chunk)) return req.once("drain", pump);
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
  expect(status).toBe(413);
});
