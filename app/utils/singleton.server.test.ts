import { describe, expect, it, vi } from "vitest";
import { releaseSingleton, replaceSingleton, singleton } from "./singleton.server";

describe("singleton", () => {
  it("creates once and serves the same instance after the module is evaluated again, as after a dev rebuild", async () => {
    const create = vi.fn(() => ({ pool: "first" }));
    const first = singleton("test:rebuild", create);
    vi.resetModules();
    const reloaded = await import("./singleton.server");
    expect(reloaded.singleton("test:rebuild", () => ({ pool: "second" }))).toBe(first);
    expect(create).toHaveBeenCalledTimes(1);
  });

  it("hands a released instance back once and creates a fresh one next time", () => {
    const first = singleton("test:release", () => ({ n: 1 }));
    expect(releaseSingleton("test:release")).toBe(first);
    expect(releaseSingleton("test:release")).toBeUndefined();
    expect(singleton("test:release", () => ({ n: 2 }))).toEqual({ n: 2 });
  });

  it("serves a replacement until it is lifted, keeping the cached instance for afterwards", () => {
    const healthy = singleton("test:replace", () => ({ up: true }));
    const broken = { up: false };
    replaceSingleton("test:replace", broken);
    expect(singleton("test:replace", () => ({ up: true }))).toBe(broken);
    replaceSingleton("test:replace", undefined);
    expect(singleton("test:replace", () => ({ up: true }))).toBe(healthy);
  });
});
