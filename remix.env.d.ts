/// <reference types="@remix-run/dev" />

// Single fetch changes what loaders and actions may return (plain objects, `data()`, Responses) and how
// useLoaderData/useActionData infer their types; this tells Remix's types the flag is on.
// (The import makes this file a module, so the block below augments Remix's types instead of replacing them.)
import "@remix-run/node";

declare module "@remix-run/node" {
  interface Future {
    v3_singleFetch: true;
  }
}
