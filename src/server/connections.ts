import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Socket } from "node:net";

/**
 * Bounds on the connections one server (the gateway, or the API) holds, so a
 * flood of idle or half-sent connections cannot take the node's file
 * descriptors: a total, a per-client-address cap, and a deadline for a
 * request's headers far below the request timeout (slowloris). A connection
 * over a cap is closed at once (shed), counted, and logged at most once a
 * second per server.
 */
export interface ConnectionLimits {
  /** Most open connections. */
  maxConnections: number;
  /** Most open connections from one client address. */
  maxConnectionsPerIp: number;
  /** Time to receive a request's headers, ms (Node answers 408 and closes). */
  headersTimeoutMs: number;
}

export type ShedReason = "total" | "per_ip";

export interface ShedEvent {
  server: string;
  reason: ShedReason;
  /** Connections shed for this reason since the last report (the log is rate-limited). */
  count: number;
  /** The last shed client's address. */
  remoteAddress: string;
  limit: number;
}

/** Half the process's open-file limit (Linux /proc/self/limits), or 8192 when it cannot be read; at most 16 384. */
export function defaultMaxConnections(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m && m[1] !== "unlimited") return Math.max(64, Math.min(16_384, Math.floor(Number(m[1]) / 2)));
  } catch {
    // not Linux: the fixed default
  }
  return 8192;
}

export const DEFAULT_CONNECTIONS_PER_IP = 256;
export const DEFAULT_HEADERS_TIMEOUT_MS = 5000;

/** Options for node:http's createServer that enforce the header deadline (checked every second, not every 30 s). */
export function httpTimeouts(limits: ConnectionLimits, requestTimeoutMs: number) {
  return {
    headersTimeout: Math.min(limits.headersTimeoutMs, requestTimeoutMs),
    requestTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
}

export class ConnectionGuard {
  private readonly perIp = new Map<string, number>();
  private open = 0;
  private readonly pending: Record<ShedReason, { count: number; remoteAddress: string }> = { total: { count: 0, remoteAddress: "" }, per_ip: { count: 0, remoteAddress: "" } };
  private reportTimer: NodeJS.Timeout | undefined;
  /** Connections shed since start, by reason. */
  readonly shed: Record<ShedReason, number> = { total: 0, per_ip: 0 };

  constructor(
    readonly name: string,
    readonly limits: ConnectionLimits,
    /** A count of shed connections (for the metric), at each shed. */
    private readonly onShed: (reason: ShedReason) => void,
    /** The rate-limited report (for the log). */
    private readonly onReport: (e: ShedEvent) => void,
  ) {}

  /** Open connections now. */
  get connections(): number {
    return this.open;
  }

  /** Puts the caps on a server; call before it listens. */
  attach(server: Server): void {
    // Runs before node:http sets the socket up, so a shed connection costs an accept and a close.
    server.prependListener("connection", (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    const ip = socket.remoteAddress ?? "";
    const fromIp = this.perIp.get(ip) ?? 0;
    let reason: ShedReason | undefined;
    if (this.open >= this.limits.maxConnections) reason = "total";
    else if (fromIp >= this.limits.maxConnectionsPerIp) reason = "per_ip";
    if (reason) {
      socket.destroy();
      this.shed[reason]++;
      this.onShed(reason);
      const p = this.pending[reason];
      p.count++;
      p.remoteAddress = ip;
      this.reportTimer ??= setTimeout(() => this.report(), 1000).unref();
      return;
    }
    this.open++;
    this.perIp.set(ip, fromIp + 1);
    socket.once("close", () => {
      this.open--;
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n === 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
    });
  }

  private report(): void {
    this.reportTimer = undefined;
    for (const reason of ["total", "per_ip"] as const) {
      const p = this.pending[reason];
      if (p.count === 0) continue;
      this.onReport({ server: this.name, reason, count: p.count, remoteAddress: p.remoteAddress, limit: reason === "total" ? this.limits.maxConnections : this.limits.maxConnectionsPerIp });
      p.count = 0;
    }
  }

  close(): void {
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.report();
  }
}
