import { getEnv } from "~/utils/env.server";
import { applySecurityHeaders } from "~/utils/security-headers.server";

/**
 * Remix passes documents through `handleRequest` and data through `handleDataRequest`, but a resource route's
 * Response (the API, the cron route, health, the live counter) goes out untouched; wrapping its loader or action
 * gives it the same headers, thrown Responses included.
 */
export function withSecurityHeaders<Args extends unknown[]>(
  handler: (...args: Args) => Response | Promise<Response>,
): (...args: Args) => Promise<Response> {
  return async (...args) => {
    try {
      return secure(await handler(...args));
    } catch (thrown) {
      if (thrown instanceof Response) throw secure(thrown);
      throw thrown;
    }
  };
}

function secure(response: Response): Response {
  // Response.redirect() and fetch() answers have immutable headers; copy those instead of failing the request.
  const target = isMutable(response) ? response : new Response(response.body, response);
  applySecurityHeaders(target.headers, { production: getEnv().NODE_ENV === "production" });
  return target;
}

function isMutable(response: Response): boolean {
  try {
    response.headers.set("X-Content-Type-Options", "nosniff");
    return true;
  } catch {
    return false;
  }
}
