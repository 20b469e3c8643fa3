import { Form, Link, NavLink } from "@remix-run/react";

const navClass = ({ isActive }: { isActive: boolean }) =>
  `whitespace-nowrap rounded px-2 py-1 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 ${
    isActive ? "bg-indigo-50 text-indigo-800" : "text-slate-700 hover:text-slate-950"
  }`;

/** The signed-in pages, in the order they appear; a new page is one more entry here. */
export const SIGNED_IN_NAV: { to: string; label: string }[] = [
  { to: "/dashboard", label: "Dashboard" },
  { to: "/sheets", label: "Sheets" },
  { to: "/keys", label: "API keys" },
  { to: "/logs", label: "Logs" },
  { to: "/docs", label: "Docs" },
  { to: "/settings", label: "Settings" },
];

/** What a visitor sees: the public API docs, then the ways in. */
export const SIGNED_OUT_NAV: { to: string; label: string }[] = [
  { to: "/docs", label: "Docs" },
  { to: "/login", label: "Log in" },
  { to: "/signup", label: "Sign up" },
];

/**
 * The header of every page. `email` is the signed-in account (null for a visitor); the error pages pass it too, so
 * the header always matches the session. `sessionUnknown`: the browser has a session cookie but the store that says
 * whose it is did not answer (an outage page); the header then offers no account links at all rather than a wrong
 * guess.
 */
export function AppHeader({ email, sessionUnknown = false }: { email: string | null; sessionUnknown?: boolean }) {
  return (
    <header className="border-b border-slate-200 bg-white">
      <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-3 sm:px-6">
        <Link
          to={email ? "/dashboard" : "/"}
          className="rounded text-lg font-semibold tracking-tight text-indigo-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
        >
          Sheetmeter
        </Link>
        {email ? (
          <>
            <AccountMenu email={email} />
            <nav aria-label="Main" className="order-last flex w-full flex-wrap gap-1 sm:order-none sm:w-auto">
              {SIGNED_IN_NAV.map((item) => (
                <NavLink key={item.to} to={item.to} className={navClass}>
                  {item.label}
                </NavLink>
              ))}
            </nav>
            <div className="ml-auto hidden items-center gap-3 sm:flex">
              <span className="max-w-[14rem] truncate text-sm text-slate-600" data-testid="signed-in-email">
                {email}
              </span>
              <LogOut />
            </div>
          </>
        ) : sessionUnknown ? null : (
          <nav aria-label="Account" className="ml-auto flex gap-1 sm:gap-2">
            {SIGNED_OUT_NAV.map((item) => (
              <NavLink key={item.to} to={item.to} className={navClass}>
                {item.label}
              </NavLink>
            ))}
          </nav>
        )}
      </div>
    </header>
  );
}

/**
 * On a phone the email does not fit beside the links, so it sits behind an account button with the log-out. A
 * <details> element: it opens without JavaScript, and the keyboard and screen readers know it as a disclosure.
 */
function AccountMenu({ email }: { email: string }) {
  return (
    <details className="group relative ml-auto sm:hidden" data-testid="account-menu">
      <summary className="flex cursor-pointer list-none items-center gap-1 rounded border border-slate-300 px-2 py-1 text-sm font-medium text-slate-800 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">
        Account
        <span aria-hidden="true" className="text-xs transition-transform group-open:rotate-180">
          ▾
        </span>
      </summary>
      <div className="absolute right-0 z-20 mt-2 w-64 max-w-[calc(100vw-2rem)] rounded-lg border border-slate-200 bg-white p-3 shadow-lg">
        <p className="text-xs text-slate-600">Signed in as</p>
        <p className="break-all text-sm font-medium text-slate-900">{email}</p>
        <div className="mt-3 flex items-center justify-between gap-2">
          <Link to="/settings" className="text-sm font-medium text-indigo-700 underline">
            Settings
          </Link>
          <LogOut />
        </div>
      </div>
    </details>
  );
}

function LogOut() {
  return (
    <Form method="post" action="/logout">
      <button
        type="submit"
        className="rounded border border-slate-300 px-2 py-1 text-sm hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
      >
        Log out
      </button>
    </Form>
  );
}
