import { isRouteErrorResponse, Link, useLocation, useRouteError, useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "~/root";

/**
 * The error page every route shares: a designed 404, a designed outage, and never a stack trace. Its way out fits
 * the visitor: the root loader (which the splat route makes run for unknown addresses too) says whether they are
 * signed in, so a customer is offered their dashboard and a visitor the home page. An outage offers "Try again"
 * on the same address, since sending the customer to another page that needs the same store would fail the same way.
 */
export function GeneralErrorBoundary() {
  const error = useRouteError();
  const root = useRouteLoaderData<typeof rootLoader>("root");
  const location = useLocation();
  const signedIn = Boolean(root?.user);
  const wayOut: ErrorAction = signedIn
    ? { to: "/dashboard", label: "Go to the dashboard" }
    : { to: "/", label: "Go to the home page" };
  // The address that failed, as a plain GET: an action's 503 is retried by loading its page again, not by resending
  // the form (the browser would ask to resubmit, and the customer may not want to repeat it blindly).
  const tryAgain: ErrorAction = { to: `${location.pathname}${location.search}`, label: "Try again", reload: true };

  if (isRouteErrorResponse(error) && error.status === 404) {
    return (
      <ErrorPanel title="Page not found" code={404} action={wayOut}>
        {signedIn
          ? "There is nothing at this address. Check the link, or go back to your dashboard."
          : "There is nothing at this address. Check the link, or start again from the home page."}
      </ErrorPanel>
    );
  }
  if (isRouteErrorResponse(error) && error.status === 503) {
    // An outage of a store, not a fault of the page: say it is temporary and that retrying is the fix.
    return (
      <ErrorPanel title="Temporarily unavailable" code={503} action={tryAgain}>
        {typeof error.data === "string" && error.data
          ? error.data
          : "A service this page needs is not answering. Please try again in a minute."}
      </ErrorPanel>
    );
  }
  if (isRouteErrorResponse(error)) {
    const detail = typeof error.data === "string" ? error.data : error.statusText;
    return (
      <ErrorPanel
        title={error.status >= 500 ? "Something went wrong" : "That did not work"}
        code={error.status}
        action={error.status >= 500 ? tryAgain : wayOut}
      >
        {detail || "The request could not be completed."}
      </ErrorPanel>
    );
  }
  if (typeof window === "undefined") console.error(error);
  return (
    <ErrorPanel title="Something went wrong" code={500} action={tryAgain}>
      An unexpected error stopped this page. It has been logged; please try again in a moment.
    </ErrorPanel>
  );
}

export interface ErrorAction {
  to: string;
  label: string;
  /** Load the address as a new document (a retry), not as a client-side navigation. */
  reload?: boolean;
}

const actionClass =
  "mt-5 inline-block rounded bg-indigo-700 px-3 py-2 text-sm font-medium text-white hover:bg-indigo-800";

/**
 * `outsideRemix` is for the page server.js answers before Remix runs (a refused cross-site form post): there is no
 * router to give `<Link>` its context, so the way out is a plain link.
 */
export function ErrorPanel({
  title,
  code,
  children,
  action = { to: "/dashboard", label: "Go to the dashboard" },
  outsideRemix = false,
}: {
  title: string;
  code: number;
  children: React.ReactNode;
  action?: ErrorAction;
  outsideRemix?: boolean;
}) {
  return (
    <section role="alert" className="mx-auto mt-10 max-w-lg rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <p className="text-sm font-semibold text-indigo-700">Error {code}</p>
      <h1 className="mt-1 text-2xl font-semibold">{title}</h1>
      <p className="mt-3 text-slate-700">{children}</p>
      {outsideRemix ? (
        <a href={action.to} className={actionClass}>
          {action.label}
        </a>
      ) : (
        <Link to={action.to} reloadDocument={action.reload} className={actionClass}>
          {action.label}
        </Link>
      )}
    </section>
  );
}
