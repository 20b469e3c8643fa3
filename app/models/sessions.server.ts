import { randomBytes } from "node:crypto";
import type { Db } from "~/utils/db.server";

/** How long a log-in lasts; the cookie's Max-Age matches, so the browser forgets it when the server would refuse it. */
export const SESSION_LIFETIME_SECONDS = 60 * 60 * 24 * 30;

// "Last seen" is for a person scanning their session list, so minute precision is enough, and it keeps a busy tab
// (the dashboard polls) from costing a Postgres write per request.
export const LAST_SEEN_RESOLUTION_MS = 60_000;

// User agents are attacker-chosen text shown back on the settings page; a bound keeps one request from storing a
// megabyte there.
const MAX_USER_AGENT_LENGTH = 512;

export interface ActiveSession {
  id: string;
  userId: string;
}

export interface SessionSummary {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  userAgent: string | null;
}

const summarySelect = { id: true, createdAt: true, lastSeenAt: true, expiresAt: true, userAgent: true } as const;

/** A fresh session for `userId`. The id is 256 random bits, so it cannot be guessed even without the signature. */
export async function createSession(
  db: Db,
  input: { userId: string; userAgent?: string | null },
  now = new Date(),
): Promise<ActiveSession> {
  // Sessions abandoned until they expired are never presented again; log-in is when the user's table gets tidied.
  await db.session.deleteMany({ where: { userId: input.userId, expiresAt: { lte: now } } });
  return db.session.create({
    data: {
      id: randomBytes(32).toString("base64url"),
      userId: input.userId,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + SESSION_LIFETIME_SECONDS * 1000),
      userAgent: input.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) || null,
    },
    select: { id: true, userId: true },
  });
}

/**
 * The live session with this id, or null when it was deleted (log-out, password change) or has expired. Marks it
 * seen when the last mark is more than a minute old; the conditional update means concurrent requests in that
 * minute write at most once between them.
 */
export async function findActiveSession(db: Db, id: string, now = new Date()): Promise<ActiveSession | null> {
  const session = await db.session.findUnique({
    where: { id },
    select: { id: true, userId: true, expiresAt: true, lastSeenAt: true },
  });
  if (!session) return null;
  if (session.expiresAt <= now) {
    await db.session.deleteMany({ where: { id } });
    return null;
  }
  if (now.getTime() - session.lastSeenAt.getTime() >= LAST_SEEN_RESOLUTION_MS) {
    await db.session.updateMany({
      where: { id, lastSeenAt: { lte: new Date(now.getTime() - LAST_SEEN_RESOLUTION_MS) } },
      data: { lastSeenAt: now },
    });
  }
  return { id: session.id, userId: session.userId };
}

/** Ends one session. Deleting an id that is already gone is not an error: log-out twice is still logged out. */
export async function deleteSession(db: Db, id: string): Promise<void> {
  await db.session.deleteMany({ where: { id } });
}

/** Ends every session of the user but `keepId` (the one asking); returns how many ended. */
export async function deleteOtherSessions(db: Db, userId: string, keepId: string): Promise<number> {
  const { count } = await db.session.deleteMany({ where: { userId, id: { not: keepId } } });
  return count;
}

/** The user's unexpired sessions, most recently seen first. Expired rows are dropped on the way. */
export async function listSessions(db: Db, userId: string, now = new Date()): Promise<SessionSummary[]> {
  await db.session.deleteMany({ where: { userId, expiresAt: { lte: now } } });
  return db.session.findMany({
    where: { userId },
    select: summarySelect,
    orderBy: [{ lastSeenAt: "desc" }, { createdAt: "desc" }],
  });
}
