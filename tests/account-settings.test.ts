import { describe, expect, it } from "vitest";
import { MAX_HISTORY_EXPORTS, MAX_SHEET_FETCHES, MAX_TEST_EVENTS } from "~/models/action-limits.server";
import { MAX_PASSWORD_REENTRIES } from "~/models/password-reentry.server";
import { setWebhookUrl } from "~/models/webhook-endpoints.server";
import { loader as historyLoader } from "~/routes/api.v1.usage.history";
import { loader as indexLoader } from "~/routes/_index";
import { action as loginAction } from "~/routes/login";
import { action as settingsAction, loader as settingsLoader } from "~/routes/settings";
import { action as sheetsAction } from "~/routes/sheets";
import { getDb } from "~/utils/db.server";
import { createUserSession } from "~/utils/session.server";
import { createTestApiKey, createTestUser, uniqueTestEmail } from "./factories";
import { cookieFrom, formRequest, getRequest, settle, TEST_ORIGIN } from "./helpers/requests";

/** The Account part of /settings and the limits on unmetered actions, through the routes as the server runs them. */
const db = getDb();
const args = (request: Request) => ({ request, params: {}, context: {} });

async function signedIn(options: { monthlyLimit?: number } = {}) {
  const user = await createTestUser(db, options);
  const cookie = cookieFrom(await createUserSession(new Request(`${TEST_ORIGIN}/login`), user.id, "/settings", { db }));
  return { user, cookie };
}

const post = (cookie: string, fields: Record<string, string>) =>
  settle(settingsAction(args(formRequest("/settings", fields, cookie))));

describe("the Account section of /settings", () => {
  it("shows the email, plan and monthly limit, and never the webhook secret", async () => {
    const { user, cookie } = await signedIn({ monthlyLimit: 2500 });
    await setWebhookUrl(db, user.id, "https://hooks.example.com/x", { allowLoopbackHttp: false });
    const page = await (await settle(settingsLoader(args(getRequest("/settings", { Cookie: cookie }))))).json();
    expect(page.account).toMatchObject({ email: user.email, plan: "free", monthlyLimit: 2500 });
    expect(page.webhook).toEqual({
      url: "https://hooks.example.com/x",
      secretRotatedAt: expect.any(String),
      secretVersion: expect.any(Number),
    });
    expect(JSON.stringify(page)).not.toContain("whsec_");
  });

  it("changes the email after the password, with clear errors for a wrong password and a taken address", async () => {
    const { user, cookie } = await signedIn();
    const taken = await createTestUser(db);
    const newEmail = uniqueTestEmail("moved");

    const invalid = await post(cookie, { intent: "change-email", email: "not-an-email", password: user.password });
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).errors.email).toMatch(/valid email/);

    const wrong = await post(cookie, { intent: "change-email", email: newEmail, password: "not the password" });
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).errors).toEqual({ password: "That is not your password." });

    const clash = await post(cookie, {
      intent: "change-email",
      email: taken.email.toUpperCase(),
      password: user.password,
    });
    expect(clash.status).toBe(400);
    expect((await clash.json()).errors).toEqual({ email: "Another account already uses that email address." });

    const same = await post(cookie, { intent: "change-email", email: user.email, password: user.password });
    expect((await same.json()).errors).toEqual({ email: "That is already your email address." });

    const changed = await post(cookie, {
      intent: "change-email",
      email: ` ${newEmail.toUpperCase()} `,
      password: user.password,
    });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toEqual({ intent: "change-email", changed: true, email: newEmail });
    expect((await db.user.findUniqueOrThrow({ where: { id: user.id } })).email).toBe(newEmail);

    // Log-in follows the address: the new one works, the old one no longer does.
    const logIn = (email: string) =>
      settle(loginAction(args(formRequest("/login", { email, password: user.password }))));
    expect((await logIn(newEmail)).status).toBe(302);
    expect((await logIn(user.email)).status).toBe(400);
  });

  it(`throttles wrong passwords per session: after ${MAX_PASSWORD_REENTRIES}, even the right one waits (429)`, async () => {
    const { user, cookie } = await signedIn();
    const other = cookieFrom(
      await createUserSession(new Request(`${TEST_ORIGIN}/login`), user.id, "/settings", { db }),
    );
    const attempt = (session: string, password: string) =>
      post(session, { intent: "change-password", currentPassword: password, newPassword: "a brand new password" });
    // A right password clears the count, so mistakes spread over a working session do not add up.
    for (let i = 0; i < MAX_PASSWORD_REENTRIES - 1; i++) expect((await attempt(cookie, "wrong")).status).toBe(400);
    const newEmail = uniqueTestEmail();
    const moved = await post(cookie, { intent: "change-email", email: newEmail, password: user.password });
    expect(moved.status).toBe(200);
    for (let i = 0; i < MAX_PASSWORD_REENTRIES; i++) expect((await attempt(cookie, "wrong")).status).toBe(400);
    const refused = await attempt(cookie, user.password);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(60);
    expect((await refused.json()).errors.form).toMatch(/^Too many wrong passwords\. Try again in \d+ minutes\.$/);
    // The same allowance covers the email and deleting the account from that session.
    const email = await post(cookie, { intent: "change-email", email: uniqueTestEmail(), password: user.password });
    expect(email.status).toBe(429);
    const deletion = await post(cookie, { intent: "delete-account", confirmEmail: newEmail, password: user.password });
    expect(deletion.status).toBe(429);
    expect(await db.user.count({ where: { id: user.id } })).toBe(1);
    // The owner's other session is not locked out by what this one did.
    expect((await attempt(other, user.password)).status).toBe(200);
  });

  it("refuses a deletion whose typed email does not match before counting a password guess", async () => {
    const { user, cookie } = await signedIn();
    for (let i = 0; i < MAX_PASSWORD_REENTRIES + 2; i++) {
      const response = await post(cookie, { intent: "delete-account", confirmEmail: "me@example.com", password: "x" });
      expect(response.status).toBe(400);
    }
    const missing = await post(cookie, { intent: "delete-account", confirmEmail: "", password: "" });
    expect((await missing.json()).errors).toEqual({
      confirmEmail: "Type your email address.",
      password: "Enter your password.",
    });
    // Not one of those was a guess: the password still gets its full allowance.
    const deleted = await post(cookie, { intent: "delete-account", confirmEmail: user.email, password: user.password });
    expect(deleted.status).toBe(302);
  });

  it("says so on the home page, once, after the account is deleted", async () => {
    const { user, cookie } = await signedIn();
    const deleted = await post(cookie, { intent: "delete-account", confirmEmail: user.email, password: user.password });
    const notice = deleted.headers
      .getSetCookie()
      .find((value) => value.startsWith("__sheetmeter_notice="))!
      .split(";")[0];
    const home = await settle(indexLoader(args(getRequest("/", { Cookie: notice }))));
    expect((await home.json()).notice).toMatch(/account and everything in it have been deleted/);
    expect(home.headers.get("Set-Cookie")).toMatch(/^__sheetmeter_notice=;.*Max-Age=0/);
    // A notice cookie that was not signed by us says nothing.
    const forged = await settle(
      indexLoader(args(getRequest("/", { Cookie: "__sheetmeter_notice=ImFjY291bnQtZGVsZXRlZCI%3D" }))),
    );
    expect((await forged.json()).notice).toBeNull();
  });
});

describe("the webhook secret", () => {
  it("is sent only by the reveal action, to its owner, and by a rotation made while it was shown", async () => {
    const { user, cookie } = await signedIn();
    const stranger = await signedIn();
    expect((await post(cookie, { intent: "webhook-reveal" })).status).toBe(400);
    await setWebhookUrl(db, user.id, "https://hooks.example.com/x", { allowLoopbackHttp: false });
    const { secret } = await db.webhookEndpoint.findUniqueOrThrow({ where: { userId: user.id } });

    const revealed = await post(cookie, { intent: "webhook-reveal" });
    expect(revealed.headers.get("Cache-Control")).toBe("no-store");
    expect(await revealed.json()).toEqual({ intent: "webhook-reveal", secret });
    expect(await (await post(stranger.cookie, { intent: "webhook-reveal" })).json()).toEqual({
      intent: "webhook-reveal",
      error: "Save a webhook URL first.",
    });

    const hiddenRotation = await (await post(cookie, { intent: "webhook-rotate", reveal: "" })).json();
    expect(hiddenRotation).toEqual({ intent: "webhook-rotate", rotated: true });
    const shownRotation = await (await post(cookie, { intent: "webhook-rotate", reveal: "1" })).json();
    const { secret: current } = await db.webhookEndpoint.findUniqueOrThrow({ where: { userId: user.id } });
    expect(shownRotation).toEqual({ intent: "webhook-rotate", rotated: true, secret: current });
    expect(current).not.toBe(secret);
  });
});

describe("limits on unmetered actions", () => {
  it(`fetches sheets from URLs by hand at most ${MAX_SHEET_FETCHES} times per user in 10 minutes, then 429`, async () => {
    const { cookie } = await signedIn();
    const refresh = () =>
      settle(sheetsAction(args(formRequest("/sheets", { intent: "refresh", sheetId: "no-such-sheet" }, cookie))));
    // No such sheet: each press is answered 404, but still counted (it is the button being pressed).
    for (let i = 0; i < MAX_SHEET_FETCHES; i++) expect((await refresh()).status).toBe(404);
    const refused = await refresh();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await refused.json()).sheetError.message).toMatch(/Scheduled refreshes go on/);
  });

  it(`sends at most ${MAX_TEST_EVENTS} test events per user in 10 minutes, then 429 with Retry-After`, async () => {
    const { user, cookie } = await signedIn();
    // No URL: each attempt is refused by the webhook check, but still counted (it is the button being pressed).
    for (let i = 0; i < MAX_TEST_EVENTS; i++) expect((await post(cookie, { intent: "webhook-test" })).status).toBe(400);
    const refused = await post(cookie, { intent: "webhook-test" });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(500);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(await refused.json()).toEqual({
      intent: "webhook-test",
      outcome: "rate_limited",
      error: "Too many test events. Try again in 10 minutes.",
    });
    // Per user: someone else's button still works.
    const other = await signedIn();
    expect((await post(other.cookie, { intent: "webhook-test" })).status).toBe(400);
    expect(user.id).not.toBe(other.user.id);
  });

  it(`answers a key's history export ${MAX_HISTORY_EXPORTS} times a minute, then 429 problem+json`, async () => {
    const { user } = await signedIn();
    const [{ key }, { key: second }] = [
      await createTestApiKey(db, user.id, "exports"),
      await createTestApiKey(db, user.id, "other"),
    ];
    const call = (apiKey: string, query = "") =>
      historyLoader({
        request: new Request(`http://localhost/api/v1/usage/history${query}`, {
          headers: { Authorization: `Bearer ${apiKey}` },
        }),
        params: {},
        context: {},
      });
    // A malformed query is answered without counting.
    expect((await call(key, "?format=xml")).status).toBe(400);
    const statuses = await Promise.all(Array.from({ length: MAX_HISTORY_EXPORTS + 5 }, () => call(key)));
    expect(statuses.filter((response) => response.status === 200)).toHaveLength(MAX_HISTORY_EXPORTS);
    const refused = statuses.find((response) => response.status === 429)!;
    expect(refused.headers.get("Content-Type")).toBe("application/problem+json");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(Number(refused.headers.get("Retry-After"))).toBeLessThanOrEqual(60);
    const body = await refused.json();
    expect(body).toMatchObject({ status: 429, title: "Too many exports" });
    expect(body.type).toMatch(/#export-rate-limited$/);
    // Per key: the account's other key is not held back.
    expect((await call(second)).status).toBe(200);
  });
});
