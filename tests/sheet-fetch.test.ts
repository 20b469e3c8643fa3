import type { LookupAddress } from "node:dns";
import { afterAll, describe, expect, it } from "vitest";
import {
  fetchSheetSource,
  type LookupFunction,
  SheetFetchError,
  type SheetFetchPolicy,
} from "~/models/sheet-fetch.server";
import { csvHandler, startSourceServer } from "./helpers/source-server";

/**
 * The SSRF-safe fetcher against real HTTP and HTTPS servers on this machine. Names are resolved by a lookup the test
 * injects (the fetcher's own lookup, the one the connection uses), so "a public name that resolves to 10.0.0.1" is
 * tested without real DNS.
 */
const HOST = "sheets.test";
const secure = await startSourceServer({ https: { hostname: HOST } });
const plain = await startSourceServer();
afterAll(async () => {
  await secure.close();
  await plain.close();
});

/** Resolves each name in `table` to its addresses; anything else is not found. */
function lookupFrom(table: Record<string, string[]>): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup = ((hostname, _options, callback) => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (!addresses) {
      const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      error.code = "ENOTFOUND";
      return callback(error, []);
    }
    callback(
      null,
      addresses.map((address): LookupAddress => ({ address, family: address.includes(":") ? 6 : 4 })),
    );
  }) as LookupFunction & { calls: string[] };
  lookup.calls = calls;
  return lookup;
}

const strict: SheetFetchPolicy = { allowLoopback: false, maxBytes: 1024, totalTimeoutMs: 3000, idleTimeoutMs: 1000 };
const local: SheetFetchPolicy = { ...strict, allowLoopback: true };
// The https server as a public host would be reached: by name, its certificate trusted.
const viaName = (extra: Record<string, string[]> = {}) => ({
  ca: secure.ca,
  lookup: lookupFrom({ [HOST]: ["127.0.0.1"], ...extra }),
});

async function refusal(promise: Promise<unknown>): Promise<SheetFetchError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(SheetFetchError);
  return error as SheetFetchError;
}

describe("fetching a source", () => {
  it("fetches over https by name, with the body's hash and validators", async () => {
    secure.handle("/ok.csv", csvHandler("a,b\n1,2\n", { etag: '"v1"', lastModified: "Mon, 30 Nov 2026 07:00:00 GMT" }));
    const result = await fetchSheetSource(`${secure.origin}/ok.csv`, local, viaName());
    expect(result).toMatchObject({ notModified: false, etag: '"v1"', lastModified: "Mon, 30 Nov 2026 07:00:00 GMT" });
    if (result.notModified) throw new Error("unreachable");
    expect(new TextDecoder().decode(result.bytes)).toBe("a,b\n1,2\n");
    expect(result.contentHash).toMatch(/^[0-9a-f]{64}$/);
    // No compression asked for: the byte limit bounds what is held.
    expect(secure.requests.at(-1)?.headers["accept-encoding"]).toBe("identity");
  });

  it("sends If-None-Match and If-Modified-Since and reports an unchanged source", async () => {
    secure.handle("/same.csv", csvHandler("a\n1\n", { etag: '"same"' }));
    const result = await fetchSheetSource(`${secure.origin}/same.csv`, local, {
      ...viaName(),
      etag: '"same"',
      lastModified: "Sun, 29 Nov 2026 00:00:00 GMT",
    });
    expect(result).toEqual({ notModified: true, url: `${secure.origin}/same.csv` });
    expect(secure.requests.at(-1)?.headers).toMatchObject({
      "if-none-match": '"same"',
      "if-modified-since": "Sun, 29 Nov 2026 00:00:00 GMT",
    });
  });

  it("reports an error status and a web page instead of CSV", async () => {
    plain.handle("/500.csv", (_request, response) => response.writeHead(500).end("boom"));
    plain.handle("/page", (_request, response) => response.writeHead(200, { "Content-Type": "text/html" }).end("<p>"));
    expect((await refusal(fetchSheetSource(`${plain.origin}/500.csv`, local))).message).toBe(
      "The source answered HTTP 500.",
    );
    expect(await refusal(fetchSheetSource(`${plain.origin}/page`, local))).toMatchObject({ code: "not-csv" });
  });

  it("refuses a certificate it does not trust", async () => {
    const error = await refusal(fetchSheetSource(`${secure.origin}/ok.csv`, local, { lookup: viaName().lookup }));
    expect(error.code).toBe("network");
    expect(error.message).toMatch(/TLS certificate/);
  });
});

describe("what the fetcher refuses (SSRF)", () => {
  it.each([
    ["http://example.com/data.csv", /Only https/],
    ["ftp://example.com/data.csv", /not ftp:/],
    ["file:///etc/passwd", /not file:/],
    ["gopher://example.com/", /not gopher:/],
    ["data:text/csv,a%0A1", /not data:/],
  ])("refuses the scheme of %s", async (url, message) => {
    const error = await refusal(fetchSheetSource(url, strict));
    expect(error.code).toBe("scheme");
    expect(error.message).toMatch(message);
  });

  it("refuses plain http to this machine unless loopback is allowed, and to anywhere else always", async () => {
    plain.handle("/local.csv", csvHandler("a\n1\n"));
    expect((await refusal(fetchSheetSource(`${plain.origin}/local.csv`, strict))).code).toBe("scheme");
    await expect(fetchSheetSource(`${plain.origin}/local.csv`, local)).resolves.toMatchObject({ notModified: false });
    expect((await refusal(fetchSheetSource("http://10.0.0.1/a.csv", local))).code).toBe("scheme");
  });

  it("refuses credentials in the URL", async () => {
    expect((await refusal(fetchSheetSource("https://user:pw@example.com/a.csv", strict))).code).toBe("invalid-url");
  });

  const forbidden: [string, string, RegExp][] = [
    ["loopback", "127.0.0.1", /loopback/],
    ["loopback (other /8 address)", "127.1.2.3", /loopback/],
    ["IPv6 loopback", "::1", /loopback/],
    ["RFC 1918 10/8", "10.0.0.5", /private \(RFC 1918\)/],
    ["RFC 1918 172.16/12", "172.16.4.4", /private \(RFC 1918\)/],
    ["RFC 1918 192.168/16", "192.168.1.1", /private \(RFC 1918\)/],
    ["CGNAT", "100.64.0.1", /carrier-grade NAT/],
    ["link-local", "169.254.10.10", /link-local/],
    ["cloud metadata", "169.254.169.254", /link-local/],
    ["AWS IPv6 metadata", "fd00:ec2::254", /unique local/],
    ["ULA", "fc00::1", /unique local/],
    ["IPv6 link-local", "fe80::1", /link-local/],
    ["unspecified", "0.0.0.0", /unspecified/],
    ["IPv6 unspecified", "::", /unspecified/],
    ["multicast", "224.0.0.1", /multicast/],
    ["IPv6 multicast", "ff02::1", /multicast/],
    ["broadcast", "255.255.255.255", /broadcast/],
    ["IPv4-mapped loopback", "::ffff:127.0.0.1", /loopback/],
    ["IPv4-mapped private", "::ffff:10.1.2.3", /private/],
    ["IPv4-mapped metadata", "::ffff:169.254.169.254", /link-local/],
    ["IPv4-compatible loopback", "::7f00:1", /outside the global unicast/],
    ["NAT64 of metadata", "64:ff9b::a9fe:a9fe", /NAT64/],
    ["reserved (TEST-NET)", "192.0.2.1", /reserved/],
  ];

  it.each(forbidden)("refuses a name that resolves to %s (%s), before connecting", async (_label, address, reason) => {
    const lookup = lookupFrom({ "data.example.com": [address] });
    const error = await refusal(fetchSheetSource("https://data.example.com/a.csv", strict, { lookup }));
    expect(error.code).toBe("address");
    expect(error.message).toMatch(reason);
    expect(error.message).toContain("data.example.com resolves to");
    expect(lookup.calls).toEqual(["data.example.com"]);
  });

  it.each(forbidden)("refuses a URL naming %s (%s) directly", async (_label, address, reason) => {
    const host = address.includes(":") ? `[${address}]` : address;
    const error = await refusal(fetchSheetSource(`https://${host}/a.csv`, strict));
    expect(error.code).toBe("address");
    expect(error.message).toMatch(reason);
  });

  it("refuses a name with one public and one private address", async () => {
    const lookup = lookupFrom({ "mixed.example.com": ["93.184.216.34", "10.0.0.1"] });
    const error = await refusal(fetchSheetSource("https://mixed.example.com/a.csv", strict, { lookup }));
    expect(error.message).toMatch(/private/);
  });

  it("resolves once per connection, so the address checked is the address connected to", async () => {
    secure.handle("/pinned.csv", csvHandler("a\n1\n"));
    // A rebinding name: the first answer passes, every later one points inside. Were the check and the connection
    // to resolve separately, the connection would get the second answer.
    let answers = 0;
    const calls: string[] = [];
    const lookup: LookupFunction = (hostname, _options, callback) => {
      calls.push(hostname);
      callback(null, [{ address: answers++ === 0 ? "127.0.0.1" : "10.0.0.1", family: 4 }]);
    };
    const result = await fetchSheetSource(`${secure.origin}/pinned.csv`, local, { ca: secure.ca, lookup });
    expect(result.notModified).toBe(false);
    expect(calls).toEqual([HOST]);
  });

  it("refuses redirects to forbidden addresses and schemes, checking every hop", async () => {
    const redirectTo = (location: string) => csvHandlerRedirect(location);
    secure.handle("/to-private", redirectTo("https://internal.example.com/secrets.csv"));
    secure.handle("/to-metadata", redirectTo("https://169.254.169.254/latest/meta-data/"));
    secure.handle("/to-mapped", redirectTo("https://[::ffff:10.0.0.1]/a.csv"));
    secure.handle("/to-http", redirectTo("http://example.com/a.csv"));
    secure.handle("/to-file", redirectTo("file:///etc/passwd"));
    const options = viaName({ "internal.example.com": ["192.168.0.10"] });

    const toPrivate = await refusal(fetchSheetSource(`${secure.origin}/to-private`, local, options));
    expect(toPrivate.message).toMatch(/internal.example.com resolves to one/);
    expect(toPrivate.message).not.toContain("192.168.0.10");
    expect((await refusal(fetchSheetSource(`${secure.origin}/to-metadata`, local, options))).message).toMatch(
      /link-local/,
    );
    expect((await refusal(fetchSheetSource(`${secure.origin}/to-mapped`, local, options))).message).toMatch(/private/);
    expect(await refusal(fetchSheetSource(`${secure.origin}/to-http`, local, options))).toMatchObject({
      code: "redirect",
      message: expect.stringMatching(/redirected to http:/),
    });
    expect((await refusal(fetchSheetSource(`${secure.origin}/to-file`, local, options))).code).toBe("redirect");
  });

  it("follows up to five redirects and refuses the sixth", async () => {
    for (let hop = 0; hop < 6; hop++) secure.handle(`/hop${hop}`, csvHandlerRedirect(`/hop${hop + 1}`));
    secure.handle("/hop6", csvHandler("a\n1\n"));
    secure.handle("/short", csvHandlerRedirect("/hop2"));
    await expect(fetchSheetSource(`${secure.origin}/short`, local, viaName())).resolves.toMatchObject({
      url: `${secure.origin}/hop6`,
    });
    const error = await refusal(fetchSheetSource(`${secure.origin}/hop0`, local, viaName()));
    expect(error).toMatchObject({ code: "redirect", message: "The source redirected more than 5 times." });
  });

  it("refuses a body over the limit, by its Content-Length or while streaming", async () => {
    plain.handle("/declared", (_request, response) =>
      response.writeHead(200, { "Content-Type": "text/csv", "Content-Length": "5000" }).end("x".repeat(5000)),
    );
    let written = 0;
    plain.handle("/endless", (_request, response) => {
      response.writeHead(200, { "Content-Type": "text/csv" });
      // Chunked, no length: the fetcher must stop reading once past the limit, not wait for the end.
      const timer = setInterval(() => {
        written += 512;
        if (!response.write("y".repeat(511) + "\n")) return;
      }, 5);
      response.on("close", () => clearInterval(timer));
    });
    const declared = await refusal(fetchSheetSource(`${plain.origin}/declared`, local));
    expect(declared).toMatchObject({ code: "too-large", message: expect.stringMatching(/larger than 1024 bytes/) });
    const streamed = await refusal(fetchSheetSource(`${plain.origin}/endless`, local));
    expect(streamed.code).toBe("too-large");
    expect(written).toBeLessThan(64 * 1024);
  });

  it("gives up on a source that stops sending (idle) and on one that drips past the total deadline", async () => {
    plain.handle("/silent", () => {});
    plain.handle("/stalls", (_request, response) => {
      response.writeHead(200, { "Content-Type": "text/csv" });
      response.write("a\n");
    });
    plain.handle("/drips", (_request, response) => {
      response.writeHead(200, { "Content-Type": "text/csv" });
      const timer = setInterval(() => response.write("1\n"), 50);
      response.on("close", () => clearInterval(timer));
    });
    // Each case with the other deadline far away, so a loaded machine cannot make the wrong one fire first.
    const idle = { ...local, idleTimeoutMs: 300, totalTimeoutMs: 10_000, maxBytes: 1024 * 1024 };
    const total = { ...local, idleTimeoutMs: 5000, totalTimeoutMs: 900, maxBytes: 1024 * 1024 };
    const started = Date.now();
    expect((await refusal(fetchSheetSource(`${plain.origin}/silent`, idle))).message).toBe(
      "The source did not answer within 300 ms.",
    );
    expect((await refusal(fetchSheetSource(`${plain.origin}/stalls`, idle))).message).toBe(
      "The source stopped sending the file for more than 300 ms.",
    );
    expect((await refusal(fetchSheetSource(`${plain.origin}/drips`, total))).message).toBe(
      "The source took longer than 900 ms to send the file.",
    );
    expect(Date.now() - started).toBeLessThan(8000);
  });
});

function csvHandlerRedirect(location: string) {
  return (_request: unknown, response: import("node:http").ServerResponse) =>
    response.writeHead(302, { Location: location }).end();
}
