import { describe, expect, it } from "vitest";
import { MAX_FAILED_LOGINS } from "~/models/login-throttle.server";
import { verifyLogin } from "~/models/user.server";
import { action as loginAction } from "~/routes/login";
import { loader as dashboardLoader } from "~/routes/dashboard";
import { action as logoutAction } from "~/routes/logout";
import { action as signupAction } from "~/routes/signup";
import { getDb } from "~/utils/db.server";
import { cookieFrom, formRequest, getRequest, settle } from "./helpers/requests";

// Called directly, a route gets no socket address (server.js passes one), so the per-address limits stay out of
// these tests of the flows themselves; they hold over HTTP in e2e/server.spec.ts and per address in
// tests/auth-throttle.test.ts. The per-email log-in limit applies here as everywhere.
async function signUp(email: string, password = "a long enough password") {
  return settle(signupAction({ request: formRequest("/signup", { email, password }), params: {}, context: {} }));
}

async function logIn(email: string, password: string, redirectTo?: string) {
  const fields: Record<string, string> = { email, password };
  if (redirectTo) fields.redirectTo = redirectTo;
  return settle(loginAction({ request: formRequest("/login", fields), params: {}, context: {} }));
}

describe("sign-up", () => {
  it("creates the account with a hashed password and signs the user in", async () => {
    const response = await signUp("New.User@Example.com");
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/dashboard");
    const setCookie = response.headers.get("Set-Cookie")!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);

    const user = await getDb().user.findUniqueOrThrow({ where: { email: "new.user@example.com" } });
    expect(user.passwordHash).toMatch(/^\$argon2id\$/);

    const dashboard = await settle(
      dashboardLoader({ request: getRequest("/dashboard", { Cookie: cookieFrom(response) }), params: {}, context: {} }),
    );
    expect(dashboard.status).toBe(200);
    expect((await dashboard.json()).user.email).toBe("new.user@example.com");
  });

  it("answers a malformed email, a short password and a taken email next to the field", async () => {
    const bad = await signUp("not-an-email", "short");
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors).toEqual({
      email: "Enter a valid email address, like you@example.com.",
      password: "Use at least 10 characters.",
    });

    await signUp("taken@example.com");
    const taken = await signUp("TAKEN@example.com");
    expect(taken.status).toBe(400);
    expect((await taken.json()).errors.email).toMatch(/already has an account/);
  });
});

describe("log-in", () => {
  it("signs in with the right password and goes back to the page asked for", async () => {
    await signUp("back@example.com", "the right password");
    const response = await logIn("back@example.com", "the right password", "/keys?x=1");
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/keys?x=1");
  });

  it("never redirects off-site after log-in", async () => {
    await signUp("offsite@example.com", "the right password");
    for (const target of ["https://evil.example", "//evil.example", "/\\evil.example"]) {
      const response = await logIn("offsite@example.com", "the right password", target);
      expect(response.headers.get("Location")).toBe("/dashboard");
    }
  });

  it("gives the same answer for an unknown email and a wrong password", async () => {
    await signUp("known@example.com", "the right password");
    const unknown = await logIn("unknown@example.com", "whatever password");
    const wrong = await logIn("known@example.com", "the wrong password");
    expect(unknown.status).toBe(400);
    expect(wrong.status).toBe(400);
    expect(await unknown.json()).toEqual(await wrong.json());
  });

  it(`locks an email after ${MAX_FAILED_LOGINS} failures: of 10 wrong passwords the last 5 are refused with 429`, async () => {
    await signUp("target@example.com", "the right password");
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await logIn("target@example.com", `guess number ${i}`)).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429, 429, 429, 429]);

    // While locked even the right password is refused, so guessing gains nothing; Retry-After says how long.
    const locked = await logIn("target@example.com", "the right password");
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get("Retry-After"))).toBeGreaterThan(800);
    expect((await locked.json()).errors.form).toMatch(/Too many failed log-ins.*Try again in 15 minutes/);

    // Another email is not affected.
    await signUp("bystander@example.com", "the right password");
    expect((await logIn("bystander@example.com", "the right password")).status).toBe(302);
  });
});

describe("sessions", () => {
  it("sends a visitor without a session to log in, remembering where they were going", async () => {
    const response = await settle(
      dashboardLoader({ request: getRequest("/dashboard?range=7d"), params: {}, context: {} }),
    );
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/login?redirectTo=%2Fdashboard%3Frange%3D7d");
  });

  it("log-out ends the session", async () => {
    const signup = await signUp("leaver@example.com");
    const cookie = cookieFrom(signup);
    const out = await settle(logoutAction({ request: formRequest("/logout", {}, cookie), params: {}, context: {} }));
    expect(out.headers.get("Location")).toBe("/login");
    const after = await settle(
      dashboardLoader({ request: getRequest("/dashboard", { Cookie: cookieFrom(out) }), params: {}, context: {} }),
    );
    expect(after.status).toBe(302);
  });

  it("verifyLogin ignores the case and spaces of the email", async () => {
    await signUp("case@example.com", "the right password");
    expect(await verifyLogin(getDb(), "  CASE@example.com ", "the right password")).toMatchObject({
      email: "case@example.com",
    });
  });
});
