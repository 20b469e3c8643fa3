import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { logout } from "~/utils/session.server";

export function action({ request }: ActionFunctionArgs) {
  return logout(request);
}

// Logging out changes state, so it is a POST; a GET (a prefetch, a pasted link) only goes home.
export function loader() {
  return redirect("/");
}
