import { GeneralErrorBoundary } from "~/components/error-boundary";

/**
 * Every address no other route claims. Without this route Remix answers such an address with the root error
 * boundary alone and never runs the root loader, so the 404 page could not tell a signed-in customer from a
 * visitor (and offered "Log in / Sign up" to both). Thrown from a loader, the 404 comes after the root loader ran.
 */
function notFound(): never {
  throw new Response("Not Found", { status: 404, statusText: "Not Found" });
}

export const loader = notFound;
// A form posted to an unknown address is a 404 too, not a 405 for a route that does not exist.
export const action = notFound;

export default function NotFound() {
  return null;
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
