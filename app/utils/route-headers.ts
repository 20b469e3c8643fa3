import type { HeadersFunction } from "@remix-run/node";

/**
 * For a page whose action (or loader) can answer 429 or 503 with `Retry-After`: Remix builds a document's headers
 * only from the route's `headers` export, so without one the page said when to try again and the response did not.
 * Only `Retry-After` is passed on; everything else a document carries comes from entry.server.
 */
export const passRetryAfter: HeadersFunction = ({ actionHeaders, loaderHeaders }) => {
  const retryAfter = actionHeaders.get("Retry-After") ?? loaderHeaders.get("Retry-After");
  return retryAfter ? { "Retry-After": retryAfter } : new Headers();
};
