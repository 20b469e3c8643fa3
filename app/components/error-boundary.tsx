import { isRouteErrorResponse, Link, useRouteError } from "@remix-run/react";

/** The error page every route shares: a designed 404, a designed error, and never a stack trace. */
export function GeneralErrorBoundary() {
  const error = useRouteError();
  if (isRouteErrorResponse(error) && error.status === 404) {
    return (
      <ErrorPanel title="Page not found" code={404}>
        There is nothing at this address. Check the link, or go back to your dashboard.
      </ErrorPanel>
    );
  }
  if (isRouteErrorResponse(error) && error.status === 503) {
    // An outage of a store, not a fault of the page: say it is temporary and that retrying is the fix.
    return (
      <ErrorPanel title="Temporarily unavailable" code={503}>
        {typeof error.data === "string" && error.data
          ? error.data
          : "A service this page needs is not answering. Please try again in a minute."}
      </ErrorPanel>
    );
  }
  if (isRouteErrorResponse(error)) {
    const detail = typeof error.data === "string" ? error.data : error.statusText;
    return (
      <ErrorPanel title={error.status >= 500 ? "Something went wrong" : "That did not work"} code={error.status}>
        {detail || "The request could not be completed."}
      </ErrorPanel>
    );
  }
  if (typeof window === "undefined") console.error(error);
  return (
    <ErrorPanel title="Something went wrong" code={500}>
      An unexpected error stopped this page. It has been logged; please try again in a moment.
    </ErrorPanel>
  );
}

const homeLinkClass =
  "mt-5 inline-block rounded bg-indigo-700 px-3 py-2 text-sm font-medium text-white hover:bg-indigo-800";

/**
 * `outsideRemix` is for the page server.js answers before Remix runs (a refused cross-site form post): there is no
 * router to give `<Link>` its context, so the way back is a plain link.
 */
export function ErrorPanel({
  title,
  code,
  children,
  outsideRemix = false,
}: {
  title: string;
  code: number;
  children: React.ReactNode;
  outsideRemix?: boolean;
}) {
  return (
    <section role="alert" className="mx-auto mt-10 max-w-lg rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <p className="text-sm font-semibold text-indigo-700">Error {code}</p>
      <h1 className="mt-1 text-2xl font-semibold">{title}</h1>
      <p className="mt-3 text-slate-700">{children}</p>
      {outsideRemix ? (
        <a href="/dashboard" className={homeLinkClass}>
          Go to the dashboard
        </a>
      ) : (
        <Link to="/dashboard" className={homeLinkClass}>
          Go to the dashboard
        </Link>
      )}
    </section>
  );
}
