import { Form, Link, NavLink } from "@remix-run/react";

const navClass = ({ isActive }: { isActive: boolean }) =>
  `rounded px-2 py-1 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 ${
    isActive ? "bg-indigo-50 text-indigo-800" : "text-slate-700 hover:text-slate-950"
  }`;

/**
 * `sessionUnknown`: the browser has a session cookie but the store that says whose it is did not answer (an
 * outage page); the header then offers no account links at all rather than a wrong guess.
 */
export function AppHeader({ email, sessionUnknown = false }: { email: string | null; sessionUnknown?: boolean }) {
  return (
    <header className="border-b border-slate-200 bg-white">
      <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-3 sm:px-6">
        <Link to={email ? "/dashboard" : "/"} className="text-lg font-semibold tracking-tight text-indigo-800">
          Sheetmeter
        </Link>
        {email ? (
          <>
            <nav aria-label="Main" className="flex flex-wrap gap-1">
              <NavLink to="/dashboard" className={navClass}>
                Dashboard
              </NavLink>
              <NavLink to="/sheets" className={navClass}>
                Sheets
              </NavLink>
              <NavLink to="/keys" className={navClass}>
                API keys
              </NavLink>
              <NavLink to="/logs" className={navClass}>
                Logs
              </NavLink>
              <NavLink to="/settings" className={navClass}>
                Settings
              </NavLink>
            </nav>
            <div className="ml-auto flex items-center gap-3">
              <span className="hidden max-w-[14rem] truncate text-sm text-slate-600 sm:inline">{email}</span>
              <Form method="post" action="/logout">
                <button type="submit" className="rounded border border-slate-300 px-2 py-1 text-sm hover:bg-slate-100">
                  Log out
                </button>
              </Form>
            </div>
          </>
        ) : sessionUnknown ? null : (
          <nav aria-label="Account" className="ml-auto flex gap-2">
            <NavLink to="/login" className={navClass}>
              Log in
            </NavLink>
            <NavLink to="/signup" className={navClass}>
              Sign up
            </NavLink>
          </nav>
        )}
      </div>
    </header>
  );
}
