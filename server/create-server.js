import http from "node:http";
import { createRequestHandler } from "@remix-run/express";
import compression from "compression";
import express from "express";
import morgan from "morgan";

/**
 * The production HTTP server, in place of remix-serve, which gave the app neither the client's socket address nor
 * a load context, served static files without our security headers, and let Remix answer a cross-site form post
 * with an empty 500.
 *
 * Express with @remix-run/express, because that is what remix-serve ran: the same request translation, the same
 * static serving, compression and one log line per request (morgan "tiny"), so nothing the app was tested under
 * changes except what is listed above. Plain ESM JavaScript, so `npm start` needs no TypeScript step; the rules it
 * applies (security headers, the cross-site check) are the app's own, exported from `app/entry.server.tsx` and
 * read here as `build.entry.module.<name>`.
 *
 * Extending it: a handler exported from entry.server.tsx (read as `build.entry.module.<name>`) can take requests
 * before Express and Remix route them, at the `dispatch` seam below, which sees every request first. Such a
 * handler skips everything Express does here — compression, the request log line, the cross-site check, and the
 * security headers Remix's hooks add — so it must apply `applySecurityHeaders` itself and stay GET-only (or ask
 * `refuseCrossSiteDocumentRequest`); it reads the client's address, if it needs one, from
 * `req.socket.remoteAddress`, as getLoadContext passes it.
 *
 * @param {import("@remix-run/node").ServerBuild} build  the server build (`import * as build from "./build/index.js"`)
 * @param {{ mode?: string }} [options]  `mode` is Remix's: "production" hides error details, "development" shows them
 * @returns {http.Server} not yet listening
 */
export function createServer(build, { mode = process.env.NODE_ENV ?? "production" } = {}) {
  const production = mode === "production";
  const { applySecurityHeaders, refuseCrossSiteDocumentRequest } = build.entry.module;

  const app = express();
  app.disable("x-powered-by");
  app.use(compression());

  // Static files get the headers every other answer gets (nosniff matters most: a file is never sniffed into
  // something else), minus the no-store that suits signed-in pages: our files are public.
  const staticHeaders = (cacheControl) => (res) => {
    const headers = new Headers();
    applySecurityHeaders(headers, { production });
    headers.set("Cache-Control", cacheControl);
    for (const [name, value] of headers) res.setHeader(name, value);
  };
  // Everything under /build/ is named by its content hash, so a new deploy never changes a file at a given URL.
  app.use(
    build.publicPath,
    express.static(build.assetsBuildDirectory, {
      cacheControl: false,
      setHeaders: staticHeaders("public, max-age=31536000, immutable"),
    }),
  );
  // The rest of public/ (the favicon) keeps its name across deploys, so caches must check back within the hour.
  app.use(express.static("public", { cacheControl: false, setHeaders: staticHeaders("public, max-age=3600") }));

  app.use(morgan("tiny"));

  // Remix refuses a cross-site document POST with an empty 500 before any hook of ours runs; ask the app's own
  // guard first so the browser gets the designed 403 page. Only headers are read; the body stays unread.
  app.use(async (req, res, next) => {
    if (req.method === "GET" || req.method === "HEAD") return next();
    let refusal;
    try {
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      const url = new URL(req.originalUrl, `http://${req.headers.host ?? "localhost"}`);
      refusal = refuseCrossSiteDocumentRequest(new Request(url, { method: req.method, headers }));
    } catch {
      return next(); // a URL or header Node accepted but fetch does not: Remix answers it as it would have
    }
    if (!refusal) return next();
    // The body is never read; closing the connection afterwards keeps it from stalling a keep-alive connection.
    res.writeHead(refusal.status, { ...Object.fromEntries(refusal.headers), Connection: "close" });
    res.end(await refusal.text());
  });

  app.all(
    "*",
    createRequestHandler({
      build,
      mode,
      // The TCP peer, for the throttles (app/utils/client-address.server.ts). req.ip is not used: it depends on
      // Express's "trust proxy", and the app applies TRUST_PROXY itself.
      getLoadContext: (req) => ({ socketAddress: req.socket.remoteAddress }),
    }),
  );

  // The seam for handlers that run before Express (see above): the sheet API's GETs, which come at machine rates
  // and cost several times more through Express and Remix than the call itself (docs/caching.md).
  const { answerDirectSheetCall } = build.entry.module;
  const serveDirect = async (req, res) => {
    const response = await answerDirectSheetCall(req.url, directRequest(req));
    if (!response) return void app(req, res); // not a path the app takes directly: Remix answers it
    const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
    const headers = Object.fromEntries(response.headers);
    if (body) headers["Content-Length"] = String(body.byteLength);
    res.writeHead(response.status, headers);
    res.end(body);
  };
  // The app answers its own failures (401, 429, 503…); this is for a bug, and gives no detail away.
  const failDirect = (res, error) => {
    console.error("Direct sheet call failed:", error);
    if (res.headersSent) return void res.destroy();
    const headers = new Headers({ "Content-Type": "application/problem+json", "Cache-Control": "no-store" });
    applySecurityHeaders(headers, { production });
    res.writeHead(500, Object.fromEntries(headers));
    res.end(JSON.stringify({ type: "about:blank", title: "Internal Server Error", status: 500 }));
  };
  const dispatch = (req, res) => {
    if (req.method === "GET" && req.url?.startsWith(SHEET_API_PREFIX)) {
      serveDirect(req, res).catch((error) => failDirect(res, error));
    } else {
      app(req, res);
    }
  };
  // Node checks the header and request deadlines below on this interval (30 s by default, which would let a
  // trickling client hold a connection up to 45 s instead of 15).
  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, dispatch);
  // Every wait has a deadline. Headers are small, so 15 s stops a client that trickles them (slowloris); a whole
  // request may take 2 minutes, enough for a 10 MB upload over a slow link. Idle keep-alive connections live 65 s,
  // past the 60 s idle timeout of common load balancers, so the balancer, not us, closes a connection it may reuse.
  server.headersTimeout = 15_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 65_000;
  return server;
}

const SHEET_API_PREFIX = "/api/v1/sheets/";

/** What the app reads of a request (its SheetRequest), straight from Node's parsed headers. */
function directRequest(req) {
  return {
    url: req.url,
    headers: {
      get(name) {
        const value = req.headers[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(", ") : value;
      },
    },
  };
}

/**
 * Stops accepting connections, lets in-flight requests finish, and closes idle keep-alive connections at once.
 * Whatever still runs after `graceMs` is cut off. Resolves true when everything finished in time.
 *
 * @param {http.Server} server
 * @param {number} graceMs
 * @returns {Promise<boolean>}
 */
export function shutDown(server, graceMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve(false);
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve(true);
    });
    server.closeIdleConnections();
  });
}
