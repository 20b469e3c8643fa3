import { afterAll, describe, expect, it, vi } from "vitest";
import { loader } from "~/routes/healthz";

// Before anything reads the environment (it is validated once): a Redis nobody answers on, Postgres still real.
process.env.UPSTASH_REDIS_REST_URL = "http://127.0.0.1:1";
const errors = vi.spyOn(console, "error").mockImplementation(() => {});
afterAll(() => errors.mockRestore());

describe("GET /healthz with Redis down", () => {
  it("says which part is down, keeps the driver's text out of the answer and puts it in the log", async () => {
    const response = await loader();
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      status: "degraded",
      down: ["redis"],
      postgres: { ok: true, latencyMs: expect.any(Number) },
      redis: { ok: false },
    });
    // What the answer used to carry: the client's own words, with the address they failed on.
    expect(text).not.toMatch(/ECONNREFUSED|fetch failed|127\.0\.0\.1|error/i);

    const logged = errors.mock.calls.map((call) => String(call[0])).find((line) => line.includes("health.down"));
    expect(JSON.parse(logged!)).toMatchObject({ event: "health.down", down: ["redis"], postgres: "up" });
    expect(JSON.parse(logged!).redis).toMatch(/ECONNREFUSED|fetch failed|no answer/);
  });
});
