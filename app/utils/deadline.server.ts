/**
 * Races `work` against a deadline: the work's own result if it settles within `ms`, else a rejection with
 * `message`. The work is not cancelled (a promise cannot be); callers use it where the caller must answer on time
 * and a late result may be dropped. A function is started inside the race, so a synchronous throw settles as a
 * rejection too.
 */
export function withDeadline<T>(work: Promise<T> | (() => Promise<T>), ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  const started = typeof work === "function" ? Promise.resolve().then(work) : work;
  return Promise.race([started, deadline]).finally(() => clearTimeout(timer));
}
