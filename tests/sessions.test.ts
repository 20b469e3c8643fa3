import { describe, expect, it } from "vitest";
import { findActiveSession, LAST_SEEN_RESOLUTION_MS } from "~/models/sessions.server";
import { loader as dashboardLoader } from "~/routes/dashboard";
import { action as keysAction } from "~/routes/keys";
import { action as loginAction } from "~/routes/login";
import { action as logoutAction } from "~/routes/logout";
import { action as settingsAction, loader as settingsLoader } from "~/routes/settings";
import { getDb } from "~/utils/db.server";
import { createTestUser } from "./factories";
import { cookieFrom, formRequest, getRequest, settle } from "./helpers/requests";

const args = (request: Request) => ({ request, params: {}, context: {} });

async function logIn(user: { email: string; password: string }, headers: Record<string, string> = {}) {
  const request = formRequest("/login", { email: user.email, password: user.password }, headers.Cookie);
  if (headers["User-Agent"]) request.headers.set("User-Agent", headers["User-Agent"]);
  const response = await settle(loginAction(args(request)));
  expect(response.status).toBe(302);
  return cookieFrom(response);
}

const openDashboard = (cookie: string) => settle(dashboardLoader(args(getRequest("/dashboard", { Cookie: cookie }))));

/** The session id inside a cookie, read back as the server would (base64 JSON before the signature). */
function sessionIdIn(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1));
  const payload = JSON.parse(Buffer.from(value.slice(0, value.lastIndexOf(".")), "base64").toString("utf8"));
  return payload.sessionId;
}

describe("server-side sessions", () => {
  it("issue 11 probe: after POST /logout the old cookie opens no dashboard and creates no key", async () => {
    const user = await createTestUser(getDb());
    const cookie = await logIn(user);
    expect((await openDashboard(cookie)).status).toBe(200);

    const out = await settle(logoutAction(args(formRequest("/logout", {}, cookie))));
    expect(out.headers.get("Location")).toBe("/login");

    // The attacker kept a copy of the cookie from before the log-out.
    const dashboard = await openDashboard(cookie);
    expect(dashboard.status).toBe(302);
    expect(dashboard.headers.get("Location")).toMatch(/^\/login\?redirectTo=/);
    const keys = await settle(keysAction(args(formRequest("/keys", { intent: "create", name: "stolen" }, cookie))));
    expect(keys.status).toBe(302);
    expect(keys.headers.get("Location")).toMatch(/^\/login\?redirectTo=/);
    expect(await getDb().apiKey.count({ where: { userId: user.id } })).toBe(0);
  });

  it("the cookie holds only a random session id, and the user's id is nowhere in it", async () => {
    const user = await createTestUser(getDb());
    const cookie = await logIn(user);
    const id = sessionIdIn(cookie);
    expect(id).toMatch(/^[\w-]{43}$/);
    expect(decodeURIComponent(cookie)).not.toContain(user.id);
    expect(Buffer.from(decodeURIComponent(cookie.split("=")[1]).split(".")[0], "base64").toString()).toBe(
      JSON.stringify({ sessionId: id }),
    );
  });

  it("log-in rotates the id: the session the browser arrived with is deleted, not reused", async () => {
    const user = await createTestUser(getDb());
    const planted = await logIn(user);
    const fresh = await logIn(user, { Cookie: planted });
    expect(sessionIdIn(fresh)).not.toBe(sessionIdIn(planted));
    expect(await getDb().session.findUnique({ where: { id: sessionIdIn(planted) } })).toBeNull();
    expect((await openDashboard(planted)).status).toBe(302);
    expect((await openDashboard(fresh)).status).toBe(200);
  });

  it("refuses an expired session and deletes its row", async () => {
    const user = await createTestUser(getDb());
    const cookie = await logIn(user);
    const id = sessionIdIn(cookie);
    await getDb().session.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await openDashboard(cookie)).status).toBe(302);
    expect(await getDb().session.findUnique({ where: { id } })).toBeNull();
  });

  it("refuses a cookie whose signature does not match", async () => {
    const user = await createTestUser(getDb());
    const cookie = await logIn(user);
    const forged = cookie.replace(/\.[^.]+$/, ".AAAA");
    expect((await openDashboard(forged)).status).toBe(302);
  });

  it("marks a session seen at most once a minute", async () => {
    const user = await createTestUser(getDb());
    const id = sessionIdIn(await logIn(user));
    const db = getDb();
    const { lastSeenAt: first } = await db.session.findUniqueOrThrow({ where: { id } });

    await findActiveSession(db, id, new Date(first.getTime() + LAST_SEEN_RESOLUTION_MS - 1000));
    expect((await db.session.findUniqueOrThrow({ where: { id } })).lastSeenAt).toEqual(first);

    const later = new Date(first.getTime() + LAST_SEEN_RESOLUTION_MS + 1000);
    await Promise.all([findActiveSession(db, id, later), findActiveSession(db, id, later)]);
    expect((await db.session.findUniqueOrThrow({ where: { id } })).lastSeenAt).toEqual(later);
  });
});

describe("/settings", () => {
  it("lists the user's sessions with this one marked, and logs out the others", async () => {
    const user = await createTestUser(getDb());
    const laptop = await logIn(user, { "User-Agent": "Laptop browser" });
    const phone = await logIn(user, { "User-Agent": "Phone browser" });
    const stranger = await logIn(await createTestUser(getDb()));

    const page = await settle(settingsLoader(args(getRequest("/settings", { Cookie: laptop }))));
    expect(page.status).toBe(200);
    const { sessions } = await page.json();
    expect(sessions).toHaveLength(2);
    expect(sessions.find((session: { current: boolean }) => session.current).userAgent).toBe("Laptop browser");
    expect(sessions.find((session: { current: boolean }) => !session.current).userAgent).toBe("Phone browser");

    const result = await settle(settingsAction(args(formRequest("/settings", { intent: "logout-others" }, laptop))));
    expect(await result.json()).toEqual({ intent: "logout-others", ended: 1 });
    expect((await openDashboard(phone)).status).toBe(302);
    expect((await openDashboard(laptop)).status).toBe(200);
    expect((await openDashboard(stranger)).status).toBe(200);
  });

  it("changes the password only with the current one, and ends every other session", async () => {
    const user = await createTestUser(getDb(), { password: "the old password" });
    const here = await logIn(user);
    const elsewhere = await logIn(user);
    const change = (fields: Record<string, string>) =>
      settle(settingsAction(args(formRequest("/settings", { intent: "change-password", ...fields }, here))));

    const wrong = await change({ currentPassword: "not the password", newPassword: "a brand new password" });
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).errors.currentPassword).toMatch(/not your current password/);
    expect((await openDashboard(elsewhere)).status).toBe(200);

    const short = await change({ currentPassword: "the old password", newPassword: "short" });
    expect(short.status).toBe(400);
    expect((await short.json()).errors.newPassword).toMatch(/at least 10/);

    const changed = await change({ currentPassword: "the old password", newPassword: "a brand new password" });
    expect(await changed.json()).toEqual({ intent: "change-password", changed: true, ended: 1 });
    expect((await openDashboard(elsewhere)).status).toBe(302);
    expect((await openDashboard(here)).status).toBe(200);
    await logIn({ email: user.email, password: "a brand new password" });
  });

  it("sends a visitor to log in", async () => {
    const response = await settle(settingsLoader(args(getRequest("/settings"))));
    expect(response.headers.get("Location")).toBe("/login?redirectTo=%2Fsettings");
  });
});
