import { describe, expect, it } from "vitest";
import { entityTagFor, ifNoneMatchHits, pageCacheKey } from "./entity-tag.server";

const sheet = { id: "s1", version: 1 };
const query = (overrides = {}) => ({ limit: 100, offset: 0, filters: [], ...overrides });

describe("pageCacheKey", () => {
  it("is the same for the same filters in any order, and differs by version and by every parameter", () => {
    const ab = pageCacheKey(
      sheet,
      query({
        filters: [
          { column: "a", value: "1" },
          { column: "b", value: "2" },
        ],
      }),
    );
    const ba = pageCacheKey(
      sheet,
      query({
        filters: [
          { column: "b", value: "2" },
          { column: "a", value: "1" },
        ],
      }),
    );
    expect(ab).toBe(ba);
    const keys = [
      pageCacheKey(sheet, query()),
      pageCacheKey({ ...sheet, version: 2 }, query()),
      pageCacheKey({ ...sheet, id: "s2" }, query()),
      pageCacheKey(sheet, query({ limit: 10 })),
      pageCacheKey(sheet, query({ offset: 10 })),
      pageCacheKey(sheet, query({ sort: { column: "a", order: "asc" } })),
      pageCacheKey(sheet, query({ sort: { column: "a", order: "desc" } })),
      pageCacheKey(sheet, query({ search: "x" })),
      pageCacheKey(sheet, query({ filters: [{ column: "search", value: "x" }] })),
      ab,
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("cannot be confused by separators inside values", () => {
    const one = pageCacheKey(sheet, query({ filters: [{ column: "a", value: 'x","b' }] }));
    const two = pageCacheKey(
      sheet,
      query({
        filters: [
          { column: "a", value: "x" },
          { column: "b", value: "" },
        ],
      }),
    );
    expect(one).not.toBe(two);
  });
});

describe("entityTagFor and ifNoneMatchHits", () => {
  const tag = entityTagFor(pageCacheKey(sheet, query()));

  it("makes a strong, quoted, stable tag", () => {
    expect(tag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
    expect(entityTagFor(pageCacheKey(sheet, query()))).toBe(tag);
    expect(entityTagFor(pageCacheKey({ ...sheet, version: 2 }, query()))).not.toBe(tag);
  });

  it("matches the tag in a list, weak or strong, and *; nothing else", () => {
    expect(ifNoneMatchHits(tag, tag)).toBe(true);
    expect(ifNoneMatchHits(`"a", ${tag}`, tag)).toBe(true);
    expect(ifNoneMatchHits(`W/${tag}`, tag)).toBe(true);
    expect(ifNoneMatchHits("*", tag)).toBe(true);
    expect(ifNoneMatchHits(`"a", "b"`, tag)).toBe(false);
    expect(ifNoneMatchHits(tag.slice(0, -2) + '"', tag)).toBe(false);
    expect(ifNoneMatchHits(`x${tag}`, tag)).toBe(false);
    expect(ifNoneMatchHits("", tag)).toBe(false);
  });
});
