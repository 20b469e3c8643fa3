import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { action as loginAction } from "~/routes/login";
import { getDb } from "~/utils/db.server";
import { safeRedirect } from "~/utils/session.server";
import { createTestUser, type TestUser } from "./factories";
import { settle } from "./helpers/requests";
import { serveRoute, type ServedRoute } from "./helpers/serve-action";

// The probes of the open-redirect report, sent as a browser would after a correct log-in. Over real HTTP, because the
// damage was in what reached the wire: a Location a browser resolves to another host, or a header Node refuses (500).
const PROBES = [
  "/\t/evil.example",
  "/\n/evil.example",
  "/\r/evil.example",
  "/\r\nSet-Cookie: x=1",
  "//evil.example",
  "/\\evil.example",
  "/\\/evil.example",
  "https://evil.example",
  "http://localhost:3000.evil.example/",
  "javascript:alert(1)",
  "/\u0000/evil.example",
];

let login: ServedRoute;
let user: TestUser;

beforeAll(async () => {
  user = await createTestUser(getDb());
  login = await serveRoute({ action: (args) => settle(loginAction(args)) });
});
afterAll(() => login.close());

async function logInOverHttp(redirectTo: string) {
  const body = new URLSearchParams({ email: user.email, password: user.password, redirectTo });
  return fetch(`${login.origin}/login`, { method: "POST", body, redirect: "manual" });
}

describe("redirectTo after log-in", () => {
  it.each(PROBES)("sends %j to the dashboard, never off-site and never a 500", async (probe) => {
    const response = await logInOverHttp(probe);
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/dashboard");
  });

  it("keeps a path on this site, with its query and fragment", async () => {
    const response = await logInOverHttp("/keys?x=1#new");
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe("/keys?x=1#new");
  });
});

describe("safeRedirect", () => {
  it("answers the resolved path, so what reaches the Location header is always valid in it", () => {
    expect(safeRedirect("/sheets/ü?q=a b")).toBe("/sheets/%C3%BC?q=a%20b");
    expect(safeRedirect("/a/../keys")).toBe("/keys");
  });

  it("falls back on anything that is not a same-origin path", () => {
    for (const target of [null, undefined, "", "dashboard", "/\u007f", "/\u0085x"]) {
      expect(safeRedirect(target, "/home")).toBe("/home");
    }
  });
});
