import { spawn } from "node:child_process";
import { startRedisRest, type RedisRestOptions } from "./redis-rest";

/**
 * The Upstash REST stand-in in a child process of its own. Benchmarks use it so the stand-in does not share an
 * event loop (and a core) with the code being measured: in production Upstash runs elsewhere.
 *
 * Run directly (`tsx dev/redis-rest-process.ts '<options JSON>'`) it starts the stand-in and prints its URL.
 */
export async function startRedisRestProcess(
  options: Omit<RedisRestOptions, "host" | "port">,
  /** Node's own flags for the child, e.g. ["--cpu-prof", "--cpu-prof-dir=…"] to profile the stand-in. */
  nodeArgs: string[] = [],
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const args = [...nodeArgs, "--import", "tsx", import.meta.filename, JSON.stringify(options)];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk) => {
      out += String(chunk);
      if (out.includes("\n")) resolve(out.trim());
    });
    child.once("exit", (code) => reject(new Error(`the Redis REST stand-in exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

if (process.argv[1] === import.meta.filename) {
  const server = await startRedisRest(JSON.parse(process.argv[2]) as RedisRestOptions);
  console.log(server.url);
  process.once("SIGTERM", () => void server.close().then(() => process.exit(0)));
}
