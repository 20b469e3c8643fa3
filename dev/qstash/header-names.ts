/**
 * Header names as QStash shows them back: QStash is written in Go, whose HTTP stack stores every header under its
 * canonical MIME form (`x-run-kind` → `X-Run-Kind`), so schedules, callback bodies and messages list headers that way
 * whatever casing the publisher sent — `@upstash/qstash`'s own schedule tests expect `"Test-Header"` for a header
 * sent as `test-header`.
 */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("-");
}

/** Headers in QStash's JSON shape: canonical names, each with its list of values. */
export function toHeaderLists(headers: Iterable<[string, string]>): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const [name, value] of headers) (lists[canonicalHeaderName(name)] ??= []).push(value);
  return lists;
}
