import { spawn } from "node:child_process";
import { Redis as IORedis } from "ioredis";
import { freePort } from "../../dev/ports";

/**
 * A Redis server of the bench's own on a loopback port: no persistence, gone when stopped. The machine's shared
 * Redis also serves every other session's tests and benches, and a single `FLUSHDB` or `SCAN` of theirs (1.4 s and
 * 10–90 ms in its slow log) stops every command behind it, which no Upstash database suffers from its neighbours.
 * The private server still runs on the same cores, so its CPU stays in the figures.
 */
export async function startPrivateRedis(
  binary = process.env.BENCH_REDIS_SERVER ?? "redis-server",
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => reject(new Error(`could not start ${binary}: ${error.message}`)));
  });
  await spawned;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.kill("SIGTERM");
    await exited;
    clearTimeout(timer);
  };
  const url = `redis://127.0.0.1:${port}`;
  const probe = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch (error) {
        probe.disconnect();
        if (child.exitCode !== null || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw new Error(`${binary} on port ${port} did not answer: ${(error as Error).message}`);
  } finally {
    probe.disconnect();
  }
  return { url, pid: child.pid!, stop };
}
