/**
 * The lock of a run directory: `RUN/nrt.lock`, created with O_EXCL while a process trains there, holding its PID,
 * host and start time. A lock whose process is gone (killed, crashed; or its PID reused by another process, told
 * apart by the start time in /proc) is stale and taken over; a live one is refused, naming the PID.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import { writeError } from "../io/write-error.js";

export const LOCK_FILE = "nrt.lock";

interface LockInfo {
  pid: number;
  host: string;
  /** the process's start time in clock ticks since boot (/proc/PID/stat field 22), where known */
  start: string | null;
}

/** A held lock: `release` removes it (once, and only while it is still this process's). */
export class RunLock {
  private released = false;
  private readonly onExit = () => this.release();

  constructor(
    private at: string,
    private readonly mine: LockInfo,
  ) {
    process.on("exit", this.onExit); // also on process.exit(2) after an error
  }

  get path(): string {
    return this.at;
  }

  /** The directory holding the lock was renamed to `dir` (a run directory created under a temporary name). */
  moved(dir: string): void {
    this.at = join(dir, LOCK_FILE);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.off("exit", this.onExit);
    const held = readLock(this.at);
    if (held && held.pid === this.mine.pid && held.host === this.mine.host) unlinkSync(this.at);
  }
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null; // field 22; the name may hold spaces
  } catch {
    return null;
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as Partial<LockInfo>;
    if (!Number.isInteger(o.pid)) return null;
    return { pid: o.pid as number, host: String(o.host ?? ""), start: o.start ?? null };
  } catch {
    return null; // unreadable or torn by a kill while it was written: stale
  }
}

/** Whether the process that wrote `info` still runs (on another host: assumed so). */
function alive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true;
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = startTime(info.pid);
  return info.start === null || now === null || now === info.start;
}

function create(path: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw writeError(e, path);
  }
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the lock of run directory `dir` for this process, or throws an NrtError naming the process that holds it.
 * `where` names the directory in the error (the run directory the user gave, when `dir` is its temporary name).
 */
export function acquireRunLock(dir: string, where = dir): RunLock {
  const path = join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), start: startTime(process.pid) };
  for (let attempt = 0; !create(path, mine); attempt++) {
    const held = readLock(path);
    if (held && alive(held)) {
      const by = held.host === mine.host ? `process ${held.pid}` : `process ${held.pid} on ${held.host}`;
      throw new NrtError(
        `is in use: ${by} is training in it (lock ${LOCK_FILE}); wait for it to finish or stop it first`,
        where,
      );
    }
    if (attempt > 2) throw new NrtError(`cannot take over the stale lock ${LOCK_FILE}`, where);
    try {
      unlinkSync(path); // stale: its process is gone
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw writeError(e, path);
    }
  }
  return new RunLock(path, mine);
}
