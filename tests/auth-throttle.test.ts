import { describe, expect, it, vi } from "vitest";
import { admitAttempt } from "~/models/attempt-throttle.server";
import { action as loginAction } from "~/routes/login";
import { action as signupAction } from "~/routes/signup";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { formRequest, settle } from "./helpers/requests";

// The throttle keys on the client's address; these requests come "through" one proxy that names it.
process.env.TRUST_PROXY = "1";

// Every argon2 call is a password check: verify for a known email, hash for an unknown one (which must cost the
// same, so the two cannot be told apart by timing).
const passwordChecks = vi.hoisted(() => ({ count: 0 }));
vi.mock("@node-rs/argon2", async (importOriginal) => {
  const argon2 = await importOriginal<typeof import("@node-rs/argon2")>();
  return {
    ...argon2,
    verify: (...args: Parameters<typeof argon2.verify>) => {
      passwordChecks.count++;
      return argon2.verify(...args);
    },
    hash: (...args: Parameters<typeof argon2.hash>) => {
      passwordChecks.count++;
      return argon2.hash(...args);
    },
  };
});

function post(path: string, fields: Record<string, string>, address: string) {
  const request = formRequest(path, fields);
  request.headers.set("X-Forwarded-For", address);
  return request;
}

async function signUp(email: string, address: string, password = "the right password") {
  return settle(signupAction({ request: post("/signup", { email, password }, address), params: {}, context: {} }));
}

async function logIn(email: string, password: string, address: string) {
  return settle(loginAction({ request: post("/login", { email, password }, address), params: {}, context: {} }));
}

describe("log-in throttle", () => {
  it("40 concurrent wrong passwords for one email get at most 5 password checks", async () => {
    await signUp("raced@example.com", "10.0.0.1");
    passwordChecks.count = 0;
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => logIn("raced@example.com", `guess ${i}`, "10.0.0.2")),
    );
    expect(passwordChecks.count).toBeLessThanOrEqual(5);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 400)).toHaveLength(passwordChecks.count);
    expect(statuses.filter((status) => status === 429)).toHaveLength(40 - passwordChecks.count);
  });

  it("40 concurrent guesses at an unknown email are capped the same way", async () => {
    passwordChecks.count = 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => logIn("nobody@example.com", `guess ${i}`, "10.0.0.3")));
    expect(passwordChecks.count).toBeLessThanOrEqual(5);
  });

  it("a stranger's failures from one address do not lock the owner out from another", async () => {
    await signUp("owner@example.com", "10.0.1.1");
    const stranger: number[] = [];
    for (let i = 0; i < 10; i++) stranger.push((await logIn("owner@example.com", `guess ${i}`, "10.0.1.66")).status);
    expect(stranger).toEqual([400, 400, 400, 400, 400, 429, 429, 429, 429, 429]);

    expect((await logIn("owner@example.com", "the right password", "10.0.1.1")).status).toBe(302);
    // The stranger's address stays locked for that email, right password or not.
    expect((await logIn("owner@example.com", "the right password", "10.0.1.66")).status).toBe(429);
  });

  it("spraying many emails from one address is stopped", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++)
      statuses.push((await logIn(`victim${i}@example.com`, "Password123!", "10.0.2.66")).status);
    expect(statuses.slice(0, 20).every((status) => status === 400)).toBe(true);
    expect(statuses.slice(20).every((status) => status === 429)).toBe(true);

    const refused = await logIn("victim99@example.com", "Password123!", "10.0.2.66");
    expect((await refused.json()).errors.form).toMatch(/Too many failed log-ins from your network/);
    // Another address is not affected.
    expect((await logIn("victim0@example.com", "Password123!", "10.0.2.67")).status).toBe(400);
  });
});

describe("sign-up throttle", () => {
  it("an address may create 10 accounts an hour; the 11th attempt is refused with 429 and creates nothing", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await signUp(`bulk${i}@example.com`, "10.0.3.66")).status);
    expect(statuses).toEqual([...Array(10).fill(302), 429, 429]);
    const refused = ["bulk10@example.com", "bulk11@example.com"];
    expect(await getDb().user.count({ where: { email: { in: refused } } })).toBe(0);
    expect((await signUp("bulk10@example.com", "10.0.3.67")).status).toBe(302);
  });
});

describe("the throttle's script", () => {
  it("counts a resent attempt (same id, reply lost) once", async () => {
    const redis = getRedis();
    const bucket = { key: "throttle-resend-probe", limit: 2 };
    for (let i = 0; i < 3; i++)
      expect(await admitAttempt(redis, "same-attempt", [bucket], 60)).toEqual({ admitted: true });
    expect(await redis.scard(bucket.key)).toBe(1);
    expect((await admitAttempt(redis, "second-attempt", [bucket], 60)).admitted).toBe(true);
    expect((await admitAttempt(redis, "third-attempt", [bucket], 60)).admitted).toBe(false);
  });

  it("does not count an attempt refused by one bucket in the others", async () => {
    const redis = getRedis();
    const full = { key: "throttle-full-probe", limit: 0 };
    const open = { key: "throttle-open-probe", limit: 5 };
    const refused = await admitAttempt(redis, "an-attempt", [open, full], 60);
    expect(refused).toMatchObject({ admitted: false, refusedBy: full });
    expect(await redis.scard(open.key)).toBe(0);
  });
});
