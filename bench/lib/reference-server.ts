import { spawn } from "node:child_process";
import http from "node:http";
import pg from "pg";
import { parseSheetQuery } from "~/api/sheet-query.server";
import { rowInColumnOrder, sheetPageStatements } from "~/models/sheets.server";
import type { SheetRowData } from "~/utils/sheet-cells";

/**
 * The yardstick of `bench:api`: the least a server can do to answer a sheet's page — `node:http` and a `pg` pool,
 * no framework, no key, no quota, no cache. It runs the API's own statements (`sheetPageStatements`, the function
 * `querySheetRows` runs) and writes the same JSON body. It validates the query with the API's parser too, since
 * the statements assume a checked query. The sheet's columns and row count are given at start: looking them up is
 * part of what the API does for each call, and what this server is meant not to do.
 *
 * Run as a child process (`startReferenceServer`), so it has an event loop and a core of its own like the app.
 */
export interface ReferenceOptions {
  databaseUrl: string;
  sheet: { id: string; columns: string[]; rowCount: number; version: number };
  /** The pool size; the app's is pg's default too (10). */
  poolSize?: number;
}

async function serve(options: ReferenceOptions): Promise<string> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
  const { sheet } = options;
  const server = http.createServer((request, response) => {
    const url = request.url ?? "/";
    const start = url.indexOf("?");
    const parsed = parseSheetQuery(new URLSearchParams(start === -1 ? "" : url.slice(start + 1)), sheet.columns);
    if (!parsed.ok) {
      response.writeHead(400, { "Content-Type": "text/plain" }).end(parsed.detail);
      return;
    }
    const { page, count } = sheetPageStatements(sheet, parsed.query);
    Promise.all([
      pool.query<{ data: SheetRowData }>(page.text, page.values as unknown[]),
      count
        ? pool.query<{ total: number }>(count.text, count.values as unknown[]).then(({ rows }) => rows[0].total)
        : sheet.rowCount,
    ]).then(
      ([{ rows }, total]) => {
        const body = JSON.stringify({
          data: rows.map(({ data }) => rowInColumnOrder(parsed.query.fields ?? sheet.columns, data)),
          meta: { total, limit: parsed.query.limit, offset: parsed.query.offset },
        });
        response.writeHead(200, { "Content-Type": "application/json" }).end(body);
      },
      (error: unknown) => {
        response.writeHead(500, { "Content-Type": "text/plain" }).end(String(error));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  process.once("SIGTERM", () => {
    server.close();
    void pool.end().then(() => process.exit(0));
  });
  return `http://127.0.0.1:${address.port}`;
}

/** Starts the reference server in a child process; resolves with its URL and pid once it listens. */
export async function startReferenceServer(
  options: ReferenceOptions,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", import.meta.filename, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NODE_ENV: "production" },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk) => {
      out += String(chunk);
      if (out.includes("\n")) resolve(out.trim());
    });
    child.once("exit", (code) => reject(new Error(`the reference server exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

if (process.argv[1] === import.meta.filename) {
  console.log(await serve(JSON.parse(process.argv[2]) as ReferenceOptions));
}
