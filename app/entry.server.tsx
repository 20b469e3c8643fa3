import { PassThrough } from "node:stream";
import type { EntryContext, HandleDataRequestFunction } from "@remix-run/node";
import { createReadableStreamFromReadable } from "@remix-run/node";
import { RemixServer } from "@remix-run/react";
import { isbot } from "isbot";
import { renderToPipeableStream } from "react-dom/server";
import { getEnv } from "~/utils/env.server";
import { NonceProvider } from "~/utils/nonce";
import { crossSiteRefusal, isSameOrigin } from "~/utils/request-guard.server";
import { applySecurityHeaders, createNonce } from "~/utils/security-headers.server";

/*
 * Exports beyond Remix's own are for server.js, which reads them as `build.entry.module.<name>` before Remix
 * routes a request: one implementation of each rule, in TypeScript, shared by the server and the app.
 */
export { answerDirectSheetCall } from "~/api/direct-sheet-api.server";
export { refuseCrossSiteDocumentRequest } from "~/utils/cross-site-document.server";
export { applySecurityHeaders } from "~/utils/security-headers.server";

// Validate the configuration when the server starts, so a bad variable stops the deploy instead of a request.
getEnv();

// Single fetch reads this export: deferred data still pending after it is rejected, so a hung store cannot keep a
// response open. React is aborted a second later, once Remix has had the chance to send those rejections.
export const streamTimeout = 5_000;

export default function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
) {
  // Bots get the whole document at once; browsers get it streamed as soon as the shell is ready.
  const readyEvent = isbot(request.headers.get("user-agent") ?? "") ? "onAllReady" : "onShellReady";
  const production = getEnv().NODE_ENV === "production";
  const nonce = createNonce();
  applySecurityHeaders(responseHeaders, { nonce, production });
  return new Promise<Response>((resolve, reject) => {
    let shellRendered = false;
    const document = (
      <NonceProvider value={nonce}>
        <RemixServer context={remixContext} url={request.url} nonce={nonce} />
      </NonceProvider>
    );
    const { pipe, abort } = renderToPipeableStream(document, {
      nonce,
      [readyEvent]() {
        shellRendered = true;
        const body = new PassThrough();
        responseHeaders.set("Content-Type", "text/html");
        resolve(
          new Response(createReadableStreamFromReadable(body), {
            headers: responseHeaders,
            status: responseStatusCode,
          }),
        );
        pipe(body);
      },
      onShellError(error: unknown) {
        reject(error);
      },
      onError(error: unknown) {
        responseStatusCode = 500;
        if (shellRendered) console.error(error);
      },
    });
    setTimeout(abort, streamTimeout + 1_000);
  });
}

// Data requests (`*.data` under single fetch) and their errors and redirects pass through here; resource routes do
// not, and set the same headers through `withSecurityHeaders` (app/utils/resource-route.server.ts).
export const handleDataRequest: HandleDataRequestFunction = (response, { request }) => {
  // Remix's own check refuses a `.data` action whose Origin differs from Host before our action runs, but answers
  // with a bare 500; a cross-site mutation gets the same designed 403 here as everywhere else.
  if (request.method !== "GET" && request.method !== "HEAD" && !isSameOrigin(request)) response = crossSiteRefusal();
  applySecurityHeaders(response.headers, { production: getEnv().NODE_ENV === "production" });
  return response;
};
