import { renderToStaticMarkup } from "react-dom/server";
import { ErrorPanel } from "~/components/error-boundary";
import stylesheet from "~/tailwind.css";
import { getEnv } from "~/utils/env.server";
import { CROSS_SITE_REFUSAL_MESSAGE, isSameOrigin, logCrossSiteRefusal } from "~/utils/request-guard.server";
import { applySecurityHeaders, createNonce } from "~/utils/security-headers.server";

/**
 * A plain (no-JavaScript) form post from another site. Remix compares `Origin` with `Host` before any hook of
 * ours runs and answers a mismatch with an empty 500, so server.js asks this first, before handing the request to
 * Remix, and a cross-site post gets the same designed 403 as the page's error boundary shows for one that reaches
 * an action. The check is the actions' own (`isSameOrigin`); only the page around it is rendered here.
 *
 * Not for: safe methods; data requests (`*.data`, `?_data=`), which `handleDataRequest` refuses in the shape the
 * Remix client reads; `/api/…`, which carries its own credentials (a bearer key, QStash's signature), never a cookie.
 * Resource routes that take a form (`/logout`) are refused here like any page.
 *
 * Only the request's method, URL and headers are read, so server.js may pass a Request without its body.
 */
export function refuseCrossSiteDocumentRequest(request: Request): Response | null {
  if (["GET", "HEAD", "OPTIONS"].includes(request.method)) return null;
  const url = new URL(request.url);
  if (url.pathname.endsWith(".data") || url.searchParams.has("_data") || url.pathname.startsWith("/api/")) return null;
  if (isSameOrigin(request)) return null;
  logCrossSiteRefusal(request);
  const nonce = createNonce();
  const headers = new Headers({ "Content-Type": "text/html; charset=utf-8" });
  applySecurityHeaders(headers, { nonce, production: getEnv().NODE_ENV === "production" });
  return new Response(`<!DOCTYPE html>${renderToStaticMarkup(<RefusalDocument />)}`, { status: 403, headers });
}

/** The app's layout without the router: the header's brand, the error panel, our stylesheet, no script. */
function RefusalDocument() {
  return (
    <html lang="en" className="h-full">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Request refused · Sheetmeter</title>
        <link rel="stylesheet" href={stylesheet} />
        <link rel="icon" href="/favicon.ico" sizes="32x32" />
      </head>
      <body className="min-h-full bg-slate-50 text-slate-900 antialiased">
        <header className="border-b border-slate-200 bg-white">
          <div className="mx-auto flex max-w-5xl items-center px-4 py-3 sm:px-6">
            <a href="/" className="text-lg font-semibold tracking-tight text-indigo-800">
              Sheetmeter
            </a>
          </div>
        </header>
        <main className="mx-auto w-full max-w-5xl px-4 py-6 sm:px-6">
          <ErrorPanel title="That did not work" code={403} outsideRemix>
            {CROSS_SITE_REFUSAL_MESSAGE}
          </ErrorPanel>
        </main>
      </body>
    </html>
  );
}
