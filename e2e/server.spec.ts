import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { MAX_FAILED_LOGINS_PER_ADDRESS } from "../app/models/login-throttle.server";
import { MAX_SIGNUPS_PER_ADDRESS } from "../app/models/signup-throttle.server";
import { freePort } from "../dev/ports";
import { expect, test, uniqueEmail } from "./fixtures";
import { createTestApiKey, createTestSheet } from "../tests/factories";
import { postForm } from "./loopback-http";

/**
 * server.js itself, over real HTTP: the client's address comes from the socket (global-setup leaves TRUST_PROXY
 * at its default, 0), so the per-address throttles hold with no proxy in front; and SIGTERM lets a request in
 * flight finish. Each test connects from a loopback address of its own (see loopback-http.ts).
 */

const password = "a long enough password";

test("sign-up is limited per socket address, whatever X-Forwarded-For claims", async ({ baseURL, db }) => {
  const from = "127.0.0.21";
  const emails = Array.from({ length: MAX_SIGNUPS_PER_ADDRESS + 1 }, () => uniqueEmail("socket-signup"));
  const statuses: number[] = [];
  for (const email of emails.slice(0, MAX_SIGNUPS_PER_ADDRESS)) {
    const { status, body } = await postForm(baseURL!, "/signup", { email, password }, { from });
    if (status !== 302)
      console.log(`sign-up answered ${status}: ${body.match(/role="alert"[^>]*>([^<]*)/)?.[1] ?? body.slice(0, 300)}`);
    statuses.push(status);
  }
  expect(statuses).toEqual(Array(MAX_SIGNUPS_PER_ADDRESS).fill(302));

  // The eleventh, even naming another client in the header a client writes itself.
  const refused = await postForm(
    baseURL!,
    "/signup",
    { email: emails[MAX_SIGNUPS_PER_ADDRESS], password },
    { from, headers: { "X-Forwarded-For": "203.0.113.77" } },
  );
  expect(refused.status).toBe(429);
  expect(refused.body).toContain("Too many sign-ups from your network");
  // The page says when to try again, and so does the header a client or crawler reads.
  expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
  expect(await db.user.count({ where: { email: emails[MAX_SIGNUPS_PER_ADDRESS] } })).toBe(0);

  // Another address is another client.
  const other = uniqueEmail("socket-signup");
  expect((await postForm(baseURL!, "/signup", { email: other, password }, { from: "127.0.0.22" })).status).toBe(302);

  await db.user.deleteMany({ where: { email: { in: [...emails, other] } } });
});

test("log-in failures are counted per socket address across emails", async ({ baseURL }) => {
  const from = "127.0.0.23";
  const statuses: number[] = [];
  for (let i = 0; i < MAX_FAILED_LOGINS_PER_ADDRESS; i++) {
    const email = uniqueEmail(`sprayed-${i}`);
    statuses.push((await postForm(baseURL!, "/login", { email, password: "Password123!" }, { from })).status);
  }
  expect(statuses).toEqual(Array(MAX_FAILED_LOGINS_PER_ADDRESS).fill(400));

  const sprayed = await postForm(baseURL!, "/login", { email: uniqueEmail("sprayed"), password: "x" }, { from });
  expect(sprayed.status).toBe(429);
  expect(sprayed.body).toContain("Too many failed log-ins from your network");
  expect(Number(sprayed.headers["retry-after"])).toBeGreaterThan(0);

  const elsewhere = await postForm(
    baseURL!,
    "/login",
    { email: uniqueEmail("bystander"), password: "x" },
    { from: "127.0.0.24" },
  );
  expect(elsewhere.status).toBe(400);
});

test("SIGTERM lets a request in flight finish, then the server exits", async () => {
  // A server of its own, since this one is stopped; same services and secrets as the suite's (global-setup).
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, [path.resolve("server.js")], {
    env: { ...process.env, APP_URL: url, PORT: String(port), HOST: "127.0.0.1", NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  server.stdout.on("data", (chunk) => output.push(String(chunk)));
  server.stderr.on("data", (chunk) => output.push(String(chunk)));
  const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
  try {
    await expect
      .poll(
        () =>
          fetch(`${url}/healthz`).then(
            (r) => r.status,
            () => 0,
          ),
        { timeout: 30_000 },
      )
      .toBe(200);

    // A log-in whose body is still arriving when the signal comes.
    const body = new URLSearchParams({ email: uniqueEmail("in-flight"), password: "not the password" }).toString();
    const request = http.request(`${url}/login`, {
      method: "POST",
      localAddress: "127.0.0.25",
      agent: false,
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": String(body.length),
        Origin: url,
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      request.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on("error", reject);
    });
    request.write(body.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    server.kill("SIGTERM");
    await expect.poll(() => output.join(""), { timeout: 5_000 }).toContain("SIGTERM");

    // No new connections once the signal is taken.
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    request.end(body.slice(10));
    expect(await answered).toBe(400);
    expect(await exited).toBe(0);
  } finally {
    if (server.exitCode === null) server.kill("SIGKILL");
  }
});

test("a client that trickles its headers is answered 408 and cut off after 15 s", async ({ baseURL }) => {
  test.setTimeout(60_000);
  const { hostname, port } = new URL(baseURL!);
  const socket = net.connect({ host: hostname, port: Number(port), localAddress: "127.0.0.26" });
  const started = Date.now();
  let received = "";
  socket.on("data", (chunk) => (received += String(chunk)));
  // One header line every 2 s, never the blank line that ends them.
  socket.write("GET /healthz HTTP/1.1\r\nHost: " + `${hostname}:${port}` + "\r\n");
  const trickle = setInterval(() => socket.write(`X-Slow-${Date.now()}: 1\r\n`), 2_000);
  await new Promise((resolve) => socket.once("close", resolve));
  clearInterval(trickle);
  const heldMs = Date.now() - started;
  expect(received).toMatch(/^HTTP\/1\.1 408/);
  expect(heldMs).toBeGreaterThanOrEqual(14_000);
  expect(heldMs).toBeLessThan(20_000);
});

test("the sheet API's GETs are answered before the framework, with every header the route gives", async ({
  baseURL,
  db,
  user,
  request,
}) => {
  const { key } = await createTestApiKey(db, user.id);
  const { sheetId } = await createTestSheet(db, user.id, { csv: "city,population\nParis,2100000\nLyon,520000\n" });
  const endpoint = `${baseURL}/api/v1/sheets/${sheetId}`;
  const auth = { Authorization: `Bearer ${key}` };
  const securityHeaders = (headers: Record<string, string>) => ({
    nosniff: headers["x-content-type-options"],
    frame: headers["x-frame-options"],
    csp: headers["content-security-policy"],
  });
  const secured = { nosniff: "nosniff", frame: "DENY", csp: expect.stringContaining("default-src 'none'") };

  const first = await request.get(`${endpoint}?sort=population&order=asc`, { headers: auth });
  expect(first.status()).toBe(200);
  expect(securityHeaders(first.headers())).toEqual(secured);
  expect(first.headers()["content-type"]).toBe("application/json");
  expect(first.headers()["ratelimit-remaining"]).toBe(String(user.monthlyLimit - 1));
  expect((await first.json()).data.map((row: { city: string }) => row.city)).toEqual(["Lyon", "Paris"]);

  // A 304 is a served call: counted, with the page's tag and no body.
  const again = await request.get(`${endpoint}?sort=population&order=asc`, {
    headers: { ...auth, "If-None-Match": first.headers()["etag"] },
  });
  expect(again.status()).toBe(304);
  expect(again.headers()["ratelimit-remaining"]).toBe(String(user.monthlyLimit - 2));

  // The app's own refusals, with the same headers: no key, a bad parameter, another sheet id (percent-encoded).
  const refusals = [
    [await request.get(endpoint), 401],
    [await request.get(`${endpoint}?sort=nope`, { headers: auth }), 400],
    [await request.get(`${baseURL}/api/v1/sheets/no%20such%20sheet`, { headers: auth }), 404],
  ] as const;
  for (const [response, status] of refusals) {
    expect(response.status()).toBe(status);
    expect(response.headers()["content-type"]).toBe("application/problem+json");
    expect(securityHeaders(response.headers())).toEqual(secured);
  }
  expect((await refusals[2][0].json()).detail).toContain("“no such sheet”");

  // Anything but GET still goes through the route, which answers 405 and counts nothing.
  const head = await request.fetch(endpoint, { method: "HEAD", headers: auth });
  expect(head.status()).toBe(405);
  const last = await request.get(endpoint, { headers: auth });
  expect(last.headers()["ratelimit-remaining"]).toBe(String(user.monthlyLimit - 3));
});
