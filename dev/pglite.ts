import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";

/**
 * An embedded Postgres (PGlite, Postgres compiled to WebAssembly) served over the Postgres wire protocol, so `pg`,
 * Prisma's `@prisma/adapter-pg` and the migration runner use it exactly like a real server.
 *
 * PGlite has a single backend, so connections take turns. `@electric-sql/pglite-socket` multiplexes connections
 * too, but per protocol *message*: when a client's Bind arrives in a later TCP chunk than its Parse (any query with
 * large parameters, e.g. a bulk insert of sheet rows), another connection's Parse can slip in between and the
 * first client silently gets the other's results (reproduced with `pg`'s Pool, 4 wrong rows out of 500). Here a
 * connection owns the backend from its first message until Postgres reports ReadyForQuery *idle*: a whole
 * Parse…Sync round, a simple query, or an entire transaction.
 */
export interface EmbeddedPostgresOptions {
  dataDir?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface EmbeddedPostgres {
  url: string;
  port: number;
  dataDir: string;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const TERMINATE = 0x58; // 'X'
const READY_FOR_QUERY = 0x5a; // 'Z'
const SYNC_MESSAGE = new Uint8Array([0x53, 0, 0, 0, 4]);

/** Follows the server's reply stream across chunk boundaries to catch ReadyForQuery and its transaction status. */
class ReadyForQueryWatcher {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private inReadyForQuery = false;
  /** 'I' idle, 'T' in a transaction, 'E' in a failed transaction; undefined until the next ReadyForQuery. */
  status: string | undefined;

  feed(chunk: Uint8Array) {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        if (this.inReadyForQuery) this.status = String.fromCharCode(chunk[offset]);
        const skipped = Math.min(this.remaining, chunk.length - offset);
        offset += skipped;
        this.remaining -= skipped;
        this.inReadyForQuery = false;
        continue;
      }
      const needed = 5 - this.header.length;
      const piece = chunk.subarray(offset, offset + needed);
      this.header = Buffer.concat([this.header, piece]);
      offset += piece.length;
      if (this.header.length === 5) {
        this.inReadyForQuery = this.header[0] === READY_FOR_QUERY;
        this.remaining = this.header.readInt32BE(1) - 4;
        this.header = Buffer.alloc(0);
      }
    }
  }
}

/** One process per data directory: two PGlite instances writing the same files would corrupt them. */
function lockDataDir(dataDir: string): () => void {
  const lockFile = `${dataDir}.lock`;
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(fs.readFileSync(lockFile, "utf8"));
      let alive = false;
      try {
        alive = Number.isInteger(holder) && holder > 0 && process.kill(holder, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`${dataDir} is in use by process ${holder} (another \`npm run dev\`?)`);
      fs.rmSync(lockFile, { force: true });
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir ?? ".data/pglite");
  const host = options.host ?? "127.0.0.1";
  const unlock = lockDataDir(dataDir);
  let db: PGlite;
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    db = await PGlite.create({ dataDir });
  } catch (error) {
    unlock();
    throw error;
  }

  let owner: object | null = null;
  const waiting: Array<{ session: object; resolve: () => void }> = [];
  const acquire = (session: object) =>
    new Promise<void>((resolve) => {
      if (owner === null || owner === session) {
        owner = session;
        resolve();
      } else waiting.push({ session, resolve });
    });
  const release = (session: object) => {
    if (owner !== session) return;
    const next = waiting.shift();
    owner = next?.session ?? null;
    next?.resolve();
  };

  const sockets = new Set<net.Socket>();
  // Each connection's last piece of work, so close() can let in-flight rounds finish before PGlite shuts down.
  const drains = new Set<Promise<void>>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const session = {};
    const watcher = new ReadyForQueryWatcher();
    let buffer = Buffer.alloc(0);
    let started = false;
    let closed = false;
    // Messages of one connection run strictly in order, each after the previous one's reply has been written.
    let chain = Promise.resolve();

    const run = async (message: Uint8Array) => {
      await acquire(session);
      watcher.status = undefined;
      await db.runExclusive(() =>
        db.execProtocolRawStream(message, {
          onRawData: (data) => {
            watcher.feed(data);
            if (!closed && socket.writable) socket.write(data);
          },
        }),
      );
      if (watcher.status === "I") release(session);
    };

    const cleanUp = async () => {
      if (owner !== session) return;
      try {
        // A connection lost between Parse and Sync would leave the backend mid-round for the next one.
        if (watcher.status === undefined) {
          await db.runExclusive(() => db.execProtocolRawStream(SYNC_MESSAGE, { onRawData: () => {} }));
        }
        if (db.isInTransaction()) await db.exec("ROLLBACK");
      } finally {
        release(session);
      }
    };

    const enqueue = (message: Uint8Array) => {
      chain = chain
        .then(() => (closed ? undefined : run(message)))
        .catch(() => {
          socket.destroy();
        });
    };

    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          const message = buffer.subarray(0, length);
          buffer = buffer.subarray(length);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            socket.write("N");
            continue;
          }
          if (code === CANCEL_REQUEST) {
            socket.end();
            return;
          }
          started = true;
          enqueue(new Uint8Array(message));
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1) + 1;
        if (buffer.length < length) return;
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (message[0] === TERMINATE) {
          socket.end();
          return;
        }
        enqueue(new Uint8Array(message));
      }
    });
    const onGone = () => {
      if (closed) return;
      closed = true;
      sockets.delete(socket);
      const drained = chain.then(cleanUp).catch(() => {});
      drains.add(drained);
      void drained.then(() => drains.delete(drained));
    };
    socket.on("close", onGone);
    socket.on("error", onGone);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await db.close();
    unlock();
    throw error;
  }
  const { port } = server.address() as net.AddressInfo;

  return {
    url: `postgresql://postgres@${host}:${port}/postgres`,
    port,
    dataDir,
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await stopped;
      await Promise.all(drains);
      try {
        if (db.isInTransaction()) await db.exec("ROLLBACK");
        await db.close();
      } finally {
        unlock();
      }
    },
  };
}
