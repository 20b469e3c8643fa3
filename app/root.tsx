import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Links, Meta, Outlet, Scripts, ScrollRestoration, useRouteLoaderData } from "@remix-run/react";
import type { ReactNode } from "react";
import { z } from "zod";
import { AppHeader } from "~/components/app-header";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import stylesheet from "~/tailwind.css";
import { getOptionalUser } from "~/auth/session-user.server";
import { carriesSessionCookie } from "~/utils/session.server";
import { useNonce } from "~/utils/nonce";

// zod probes for `new Function` the first time it builds an object schema, which the CSP (rightly) refuses and
// reports as a violation; jitless mode skips the probe. The root module is evaluated before any route's schemas.
if (typeof document !== "undefined") z.config({ jitless: true });

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesheet },
  { rel: "icon", href: "/favicon.ico", sizes: "32x32" },
];

export const meta: MetaFunction = () => [
  { title: "Sheetmeter" },
  { name: "description", content: "Turn a spreadsheet into a JSON API, metered against your monthly quota." },
];

export async function loader({ request }: LoaderFunctionArgs) {
  try {
    const user = await getOptionalUser(request);
    return { user: user ? { email: user.email } : null, sessionUnknown: false };
  } catch {
    // Postgres did not answer, so whether a session cookie is still good cannot be known. Saying "signed out"
    // would offer "Log in / Sign up" to a signed-in customer on the very page that explains the outage.
    return { user: null, sessionUnknown: carriesSessionCookie(request) };
  }
}

export function Layout({ children }: { children: ReactNode }) {
  // The root loader has no data when the error boundary renders after it failed; the header then shows no user.
  const data = useRouteLoaderData<typeof loader>("root");
  const nonce = useNonce();
  return (
    <html lang="en" className="h-full">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body className="min-h-full bg-slate-50 text-slate-900 antialiased">
        <AppHeader email={data?.user?.email ?? null} sessionUnknown={data?.sessionUnknown ?? false} />
        <main className="mx-auto w-full max-w-5xl px-4 py-6 sm:px-6">{children}</main>
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
