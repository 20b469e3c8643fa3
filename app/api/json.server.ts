/**
 * A JSON `Response` for resource routes. Not `Response.json`: until single fetch makes remix-serve install Node's
 * own fetch, the global `Response` is Remix's polyfill, which has no static `json`.
 */
export function jsonResponse(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(body), { ...init, headers });
}
