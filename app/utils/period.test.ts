import { describe, expect, it } from "vitest";
import {
  hourBucket,
  isPeriod,
  parseQuotaKey,
  periodEnd,
  periodOf,
  previousPeriod,
  quotaKey,
  quotaKeyUserId,
  secondsInPeriod,
  secondsUntilReset,
} from "./period";

describe("period helpers", () => {
  it("names the UTC month, not the local one", () => {
    expect(periodOf(new Date("2026-11-30T23:59:59.999Z"))).toBe("2026-11");
    expect(periodOf(new Date("2026-12-01T00:00:00Z"))).toBe("2026-12");
  });

  it("resets at the first instant of the next month, across a year boundary", () => {
    expect(periodEnd("2026-12").toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(previousPeriod("2027-01")).toBe("2026-12");
    expect(secondsInPeriod("2028-02")).toBe(29 * 86400);
  });

  it("never answers 0 seconds until reset", () => {
    expect(secondsUntilReset("2026-11", new Date("2026-11-30T23:59:59.999Z"))).toBe(1);
    expect(secondsUntilReset("2026-11", new Date("2026-11-30T23:00:00Z"))).toBe(3600);
  });

  it("buckets by the start of the UTC hour", () => {
    expect(hourBucket(new Date("2026-11-29T08:59:59.999Z")).toISOString()).toBe("2026-11-29T08:00:00.000Z");
  });

  it("round-trips quota keys, including user ids with colons", () => {
    expect(quotaKey("u1", "2026-11")).toBe("quota:u1:2026-11");
    expect(parseQuotaKey("quota:a:b:2026-11")).toEqual({ userId: "a:b", period: "2026-11" });
    expect(parseQuotaKey("quota:nope")).toBeNull();
  });

  it("quotaKeyUserId agrees with parseQuotaKey and isPeriod", () => {
    for (const key of [
      "quota:u1:2026-11",
      "quota:a:b:2026-11",
      "quota:cmx2ygpii00007h7dggk1myck:2026-01",
      "quota:u1:2026-13",
      "quota:u1:2026-00",
      "quota::2026-11",
      "quota:u1-2026-11",
      "quota:nope",
      "quotas:u1:2026-11",
      "other:u1:2026-11",
      "quota:u1:2026-1x",
    ]) {
      const parsed = parseQuotaKey(key);
      expect(quotaKeyUserId(key), key).toBe(parsed && isPeriod(parsed.period) ? parsed.userId : null);
    }
  });
});
