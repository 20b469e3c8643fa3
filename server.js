/**
 * `npm start` (and `remix dev -c "node server.js"` in development; `node server.js <build>` serves another build): the built app on PORT (default 3000), on HOST
 * if set, else every interface, as remix-serve did. SIGTERM or SIGINT stops it gracefully.
 */
import path from "node:path";
import url from "node:url";
import { broadcastDevReady, installGlobals } from "@remix-run/node";
import { createServer, shutDown } from "./server/create-server.js";

// As remix-serve: production unless told otherwise, set before the build is imported, since the app reads its
// configuration (and refuses a bad one) as the build loads.
process.env.NODE_ENV ??= "production";
const mode = process.env.NODE_ENV;
// As remix-serve: the build to serve may be named on the command line (tests build into a directory of their own).
const buildPath = path.resolve(process.argv[2] ?? "build/index.js");
const build = await import(url.pathToFileURL(buildPath).href);
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST || undefined;
// A deploy's SIGTERM is usually followed by SIGKILL after 30 s; finishing in-flight requests within 10 s leaves room.
const SHUTDOWN_GRACE_MS = 10_000;

// As remix-serve: with single fetch, undici's fetch and Request, which the app has been tested under.
installGlobals({ nativeFetch: build.future.v3_singleFetch });

const server = createServer(build, { mode });
server.listen(port, host, () => {
  console.log(`[sheetmeter] http://${host ?? "localhost"}:${port} (${mode})`);
  // `remix dev` restarts this process after each rebuild and waits for this call before reloading the browser.
  if (mode === "development") void broadcastDevReady(build);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.once(signal, async () => {
    console.log(`[sheetmeter] ${signal}: finishing in-flight requests (at most ${SHUTDOWN_GRACE_MS / 1000} s)`);
    const finished = await shutDown(server, SHUTDOWN_GRACE_MS);
    // The app's database pools and timers would keep the process alive; nothing is left to serve, so exit.
    process.exit(finished ? 0 : 1);
  });
}
