import type { LoaderFunctionArgs } from "@remix-run/node";
import { Link } from "@remix-run/react";
import { primaryButton } from "~/components/forms";
import { redirectSignedIn } from "~/utils/session.server";

export async function loader({ request }: LoaderFunctionArgs) {
  await redirectSignedIn(request);
  return null;
}

export default function Index() {
  return (
    <section className="mx-auto mt-10 max-w-2xl text-center">
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
