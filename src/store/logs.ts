import type { Db } from "./database.js";
import type { LogEntry, LogStream } from "./types.js";

export interface LogOptions {
  /** Lines kept per app; older lines are deleted (bounded retention). Default 2000. */
  maxLinesPerApp?: number;
  /** Longest line kept, in characters; longer lines are cut with a marker. Default 8192. */
  maxLineChars?: number;
}

type Listener = (entries: LogEntry[]) => void;

/**
 * Per-app log lines (guest stdout/stderr and platform events). Appends are
 * buffered and written in one transaction per flush, so the request path
 * never waits on SQLite; listeners (SSE followers) see lines as they flush.
 */
export class LogRepo {
  private pending: Omit<LogEntry, "seq">[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly maxLines: number;
  private readonly maxChars: number;
  private readonly touched = new Set<string>();

  constructor(private readonly db: Db, opts: LogOptions = {}) {
    this.maxLines = opts.maxLinesPerApp ?? 2000;
    this.maxChars = opts.maxLineChars ?? 8192;
  }

  append(appId: string, stream: LogStream, line: string, ts = Date.now()): void {
    const text = line.length > this.maxChars ? line.slice(0, this.maxChars) + " …[truncated]" : line;
    this.pending.push({ appId, ts, stream, line: text });
    // Bounded even if flushes stall: a flood of output cannot grow memory without limit.
    if (this.pending.length > 50_000) this.pending.splice(0, this.pending.length - 50_000);
  }

  /** Writes buffered lines, prunes old ones, and notifies followers. */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const insert = this.db.prepare("INSERT INTO logs (app_id, ts, stream, line) VALUES (?, ?, ?, ?)");
    const exists = this.db.prepare("SELECT 1 FROM apps WHERE id = ?");
    const written: LogEntry[] = [];
    this.db.transaction(() => {
      const live = new Map<string, boolean>();
      for (const e of batch) {
        let ok = live.get(e.appId);
        if (ok === undefined) live.set(e.appId, (ok = exists.get(e.appId) !== undefined));
        if (!ok) continue; // the app was deleted meanwhile
        const seq = Number(insert.run(e.appId, e.ts, e.stream, e.line).lastInsertRowid);
        written.push({ seq, ...e });
        this.touched.add(e.appId);
      }
      const prune = this.db.prepare(
        "DELETE FROM logs WHERE app_id = ? AND seq <= (SELECT seq FROM logs WHERE app_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
      );
      for (const appId of this.touched) prune.run(appId, appId, this.maxLines);
      this.touched.clear();
    })();
    if (written.length > 0) for (const l of this.listeners) l(written);
  }

  /** Lines of an app after `afterSeq`, oldest first; with `tail`, only the last `tail` lines. */
  read(appId: string, opts: { afterSeq?: number; tail?: number; limit?: number } = {}): LogEntry[] {
    this.flush();
    const limit = Math.min(opts.limit ?? 1000, 10_000);
    type R = { seq: number; app_id: string; ts: number; stream: LogStream; line: string };
    let rows: R[];
    if (opts.tail !== undefined) {
      rows = (this.db.prepare("SELECT * FROM logs WHERE app_id = ? ORDER BY seq DESC LIMIT ?").all(appId, Math.min(opts.tail, limit)) as R[]).reverse();
    } else {
      rows = this.db.prepare("SELECT * FROM logs WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?").all(appId, opts.afterSeq ?? 0, limit) as R[];
    }
    return rows.map((r) => ({ seq: r.seq, appId: r.app_id, ts: r.ts, stream: r.stream, line: r.line }));
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
