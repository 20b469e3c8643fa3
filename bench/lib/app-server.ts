import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "../../dev/ports";

/** The built app (`build/index.js`) served by server.js on loopback, as `npm start` serves it in production. */
export interface AppServer {
  url: string;
  process: ChildProcess;
  tail: string[];
}

// Every child a bench started and has not yet seen exit, so a watchdog can kill them all when a run overruns.
const running = new Set<ChildProcess>();

export interface StartAppOptions {
  /** The server build to serve; `build/index.js` (what `remix build` writes) unless a test built its own. */
  build?: string;
  /** Node's own flags for the server, e.g. ["--cpu-prof", "--cpu-prof-dir=…"] to profile it. */
  nodeArgs?: string[];
}

export async function startApp(env: Record<string, string>, options: StartAppOptions = {}): Promise<AppServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [...(options.nodeArgs ?? []), path.resolve("server.js"), options.build ?? "build/index.js"];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  // The server logs every request; the pipe must be drained or the server stalls. Only the tail is kept.
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(String(chunk));
    if (tail.length > 40) tail.shift();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`The app server exited with ${child.exitCode}:\n${tail.join("")}`);
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).ok) {
        return { url, process: child, tail };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`The app server did not become healthy:\n${tail.join("")}`);
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`: a stuck server cannot hold a bench open. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** For a watchdog: kills every app server still running, at once and without waiting. */
export function killAppsNow() {
  for (const child of running) child.kill("SIGKILL");
}
