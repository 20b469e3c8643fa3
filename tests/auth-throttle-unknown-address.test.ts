import { describe, expect, it } from "vitest";
import { action as loginAction } from "~/routes/login";
import { action as signupAction } from "~/routes/signup";
import { formRequest, settle } from "./helpers/requests";

/**
 * When the client's address cannot be trusted. With no proxy (TRUST_PROXY=0) the socket names the client, and
 * e2e/server.spec.ts shows the per-address limits holding over real HTTP. Behind N proxies the client is named
 * by X-Forwarded-For; a request carrying fewer entries than the chain bypassed it (or the chain is misconfigured),
 * and its socket is as likely to be a proxy that every client shares. Such requests must not share one bucket.
 */
process.env.TRUST_PROXY = "1";
// As server.js passes it; with TRUST_PROXY=1 the socket is the proxy's and is never a client's key.
const context = { socketAddress: "10.0.0.1" };

const logIn = (email: string, password: string) =>
  settle(loginAction({ request: formRequest("/login", { email, password }), params: {}, context }));
const signUp = (email: string) =>
  settle(
    signupAction({
      request: formRequest("/signup", { email, password: "a long enough password" }),
      params: {},
      context,
    }),
  );

describe("throttles for a request without the proxies' X-Forwarded-For", () => {
  it("do not put every such visitor in one bucket: 25 failures over 25 emails lock out nobody else", async () => {
    const statuses = [];
    for (let i = 0; i < 25; i++) statuses.push((await logIn(`sprayed-${i}@example.com`, "wrong")).status);
    expect(statuses).toEqual(Array(25).fill(400));
    expect((await logIn("bystander@example.com", "wrong")).status).toBe(400);
  });

  it("still lock one email after 5 failures", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await logIn("guessed@example.com", `guess ${i}`)).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
  });

  it("do not close sign-up for everyone after ten sign-ups in an hour", async () => {
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await signUp(`newcomer-${i}@example.com`)).status);
    expect(statuses).toEqual(Array(12).fill(302));
  });
});
