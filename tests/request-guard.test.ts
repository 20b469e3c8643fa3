import type { ActionFunctionArgs } from "@remix-run/node";
import { beforeAll, describe, expect, it } from "vitest";
import { action as cronAction } from "~/routes/api.cron.update-usage";
import { action as keysAction } from "~/routes/keys";
import { action as loginAction } from "~/routes/login";
import { action as logoutAction } from "~/routes/logout";
import { action as sheetsAction } from "~/routes/sheets";
import { action as signupAction } from "~/routes/signup";
import { getDb } from "~/utils/db.server";
import { formRequest, settle, TEST_ORIGIN } from "./helpers/requests";
import { signUpThroughForm } from "./helpers/sign-up";

/**
 * Issue 11's CSRF and body-size probes, replayed against the actions: a cross-site POST with the victim's cookie
 * created a key, and a 50 MB body to /login was buffered whole (568 MB peak RSS for one request).
 */
let cookie: string;
let userId: string;

beforeAll(async () => {
  ({ cookie, userId } = await signUpThroughForm("guard"));
});

function crossSite(request: Request): Request {
  request.headers.set("Origin", "https://evil.example");
  request.headers.set("Sec-Fetch-Site", "cross-site");
  return request;
}

const call = (action: (args: ActionFunctionArgs) => unknown, request: Request) =>
  settle(action({ request, params: {}, context: {} }));

describe("CSRF", () => {
  it("refuses a cross-site key creation that carries a valid cookie, and creates no key", async () => {
    const before = await getDb().apiKey.count({ where: { userId } });
    const response = await call(
      keysAction,
      crossSite(formRequest("/keys", { intent: "create", name: "evil" }, cookie)),
    );
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/sent from another site/);
    expect(await getDb().apiKey.count({ where: { userId } })).toBe(before);
  });

  it("refuses by Sec-Fetch-Site when a browser sends no Origin", async () => {
    const request = formRequest("/keys", { intent: "create", name: "evil" }, cookie);
    request.headers.set("Sec-Fetch-Site", "same-site");
    expect((await call(keysAction, request)).status).toBe(403);
  });

  it("guards log-in, sign-up, log-out and sheet deletion too", async () => {
    const fields = { email: "x@example.com", password: "a long enough password" };
    expect((await call(loginAction, crossSite(formRequest("/login", fields)))).status).toBe(403);
    expect((await call(signupAction, crossSite(formRequest("/signup", fields)))).status).toBe(403);
    expect((await call(logoutAction, crossSite(formRequest("/logout", {}, cookie)))).status).toBe(403);
    const remove = crossSite(formRequest("/sheets", { intent: "delete", sheetId: "x" }, cookie));
    expect((await call(sheetsAction, remove)).status).toBe(403);
  });

  it("lets the app's own pages through", async () => {
    const request = formRequest("/keys", { intent: "create", name: "own page" }, cookie);
    request.headers.set("Origin", TEST_ORIGIN);
    request.headers.set("Sec-Fetch-Site", "same-origin");
    const response = await call(keysAction, request);
    expect(response.status).toBe(200);
    expect((await response.json()).created.name).toBe("own page");
  });
});

/** A body of `totalBytes` that is produced as it is read and declares no Content-Length, as a chunked upload. */
function streamedBody(totalBytes: number, chunkBytes = 64 * 1024) {
  let sent = 0;
  let pulled = 0;
  const chunk = new Uint8Array(chunkBytes).fill(0x61);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      pulled += 1;
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, sentBytes: () => sent, pulls: () => pulled };
}

function streamedRequest(path: string, body: ReadableStream<Uint8Array>, headers: Record<string, string>) {
  return new Request(`${TEST_ORIGIN}${path}`, { method: "POST", headers, body, duplex: "half" } as RequestInit);
}

const FIFTY_MB = 50 * 1024 * 1024;

describe("body limits", () => {
  it("answers 413 to a 50 MB log-in body without Content-Length, having read barely past 16 KB", async () => {
    const body = streamedBody(FIFTY_MB);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const response = await call(
      loginAction,
      streamedRequest("/login", body.stream, { "Content-Type": "application/x-www-form-urlencoded" }),
    );
    const rssRise = process.memoryUsage().rss - rssBefore;
    expect(response.status).toBe(413);
    expect(await response.text()).toMatch(/more than 16 KB/);
    // A stream may read a chunk or two ahead; what matters is that the 50 MB were never pulled, let alone held.
    expect(body.sentBytes()).toBeLessThan(1024 * 1024);
    expect(rssRise).toBeLessThan(20 * 1024 * 1024);
  });

  it("refuses a declared 50 MB sign-up before reading a byte", async () => {
    const body = streamedBody(FIFTY_MB);
    const response = await call(
      signupAction,
      streamedRequest("/signup", body.stream, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": String(FIFTY_MB),
      }),
    );
    expect(response.status).toBe(413);
    expect(body.pulls()).toBeLessThanOrEqual(1);
  });

  it("answers the cron route's oversize body with a 413 problem before any signature check reads it", async () => {
    const body = streamedBody(FIFTY_MB);
    const response = await call(
      cronAction,
      streamedRequest("/api/cron/update-usage", body.stream, { "Content-Type": "application/json" }),
    );
    expect(response.status).toBe(413);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect((await response.json()).detail).toMatch(/at most 65536 bytes/);
    expect(body.sentBytes()).toBeLessThan(1024 * 1024);
  });

  it("counts an upload's parts together while streaming and answers the page's form error past 10 MB", async () => {
    // Two parts of 6 MB each: neither passes the 10 MB file limit alone, together they pass the body limit.
    const form = new FormData();
    form.set("file", new Blob([new Uint8Array(6 * 1024 * 1024).fill(0x61)]), "a.csv");
    form.set("name", "x".repeat(6 * 1024 * 1024));
    const encoded = new Response(form);
    const request = streamedRequest("/sheets", encoded.body!, {
      "Content-Type": encoded.headers.get("Content-Type")!,
      Cookie: cookie,
    });
    const response = await call(sheetsAction, request);
    expect(response.status).toBe(413);
    expect((await response.json()).error).toMatch(/larger than 10 MB/);
  });
});
