import { describe, expect, it } from "vitest";
import { action as loginAction } from "~/routes/login";
import { action as signupAction } from "~/routes/signup";
import { formRequest, settle } from "./helpers/requests";

// TRUST_PROXY is left at its default, 0: no client address can be trusted, as with remix-serve and no proxy.
const logIn = (email: string, password: string) =>
  settle(loginAction({ request: formRequest("/login", { email, password }), params: {}, context: {} }));
const signUp = (email: string) =>
  settle(
    signupAction({
      request: formRequest("/signup", { email, password: "a long enough password" }),
      params: {},
      context: {},
    }),
  );

describe("throttles without a trusted client address", () => {
  it("do not put every visitor in one bucket: 25 failures over 25 emails lock out nobody else", async () => {
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
