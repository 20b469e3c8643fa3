/// <reference types="@remix-run/dev" />

// Single fetch changes what loaders and actions may return (plain objects, `data()`, Responses) and how
// useLoaderData/useActionData infer their types; this tells Remix's types the flag is on.
// (The import makes this file a module, so the block below augments Remix's types instead of replacing them.)
import "@remix-run/node";

declare module "@remix-run/node" {
  interface Future {
    v3_singleFetch: true;
  }

  // What server.js's getLoadContext passes to every loader and action.
  interface AppLoadContext {
    /**
     * The TCP peer's address (`req.socket.remoteAddress`). Absent when a route is called without server.js (the
     * Vitest route tests call loaders and actions directly), so code must not assume it.
     */
    socketAddress?: string;
  }
}
