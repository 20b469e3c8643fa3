import { action as signupAction } from "~/routes/signup";
import { getDb } from "~/utils/db.server";
import { cookieFrom, formRequest, settle } from "./requests";

/** A customer who signed up through the form, as a browser would: their session cookie and their id. */
export async function signUpThroughForm(tag: string): Promise<{ cookie: string; userId: string }> {
  const email = `${tag}-${Date.now()}@example.com`;
  const response = await settle(
    signupAction({
      request: formRequest("/signup", { email, password: "a long enough password" }),
      params: {},
      context: {},
    }),
  );
  const { id } = await getDb().user.findUniqueOrThrow({ where: { email }, select: { id: true } });
  return { cookie: cookieFrom(response), userId: id };
}
