import type { HeadersFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { primaryButton } from "~/components/forms";
import { takeNotice } from "~/utils/notice.server";
import { redirectSignedIn } from "~/utils/session.server";

export async function loader({ request }: LoaderFunctionArgs) {
  await redirectSignedIn(request);
  // A one-time notice from the page that sent the visitor here (after "Delete my account").
  const notice = await takeNotice(request);
  return data({ notice: notice.message }, notice.clear ? { headers: { "Set-Cookie": notice.clear } } : undefined);
}

// A document's headers come only from this export: without it the notice would never be cleared.
export const headers: HeadersFunction = ({ loaderHeaders }) => {
  const clear = loaderHeaders.get("Set-Cookie");
  return clear ? { "Set-Cookie": clear } : new Headers();
};

export default function Index() {
  const { notice } = useLoaderData<typeof loader>();
  return (
    <section className="mx-auto mt-10 max-w-2xl text-center">
      {notice ? (
        <p role="status" className="mb-8 rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
          {notice}
        </p>
      ) : null}
      <h1 className="text-3xl font-semibold tracking-tight sm:text-4xl">Your spreadsheet, as a JSON API</h1>
      <p className="mt-4 text-lg text-slate-700">
        Upload a CSV, get an endpoint with filtering, sorting and search. Every call is metered against your monthly
        quota, and your dashboard shows where you stand, live.
      </p>
      <div className="mt-8 flex justify-center gap-3">
        <Link to="/signup" className={primaryButton}>
          Get started free
        </Link>
        <Link to="/login" className="rounded border border-slate-300 px-4 py-2 text-sm font-medium hover:bg-white">
          Log in
        </Link>
      </div>
    </section>
  );
}
