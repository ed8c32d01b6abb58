import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { chmodSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { NodeStore, AppRecord, TenantRecord } from "../store/index.js";
import type { ResourceManager, InvokeResult, RunOutcome } from "../manager/index.js";
import { Refusal } from "../manager/index.js";
import { ApiError, type ErrorCode } from "./errors.js";
import { httpTimeouts, type ConnectionGuard } from "./connections.js";
import type { TrapReport } from "../sandbox/guest.js";
import { CgiResponseParser, CgiError, BadRequest, cgiArgs, cgiEnv, requestTarget, type RequestTarget } from "./wagi.js";
import { FORWARDED_FOR, FORWARDED_ID, type ForwardRequest, type ForwardResult } from "../cluster/routing.js";

export interface GatewayHooks {
  /** Called once per request with its outcome (metrics, stats, usage, `uniwasm dev`'s request lines). */
  finished(e: RequestFinished): void;
  /** A line of guest stderr for the app's log. */
  stderr(appId: string, chunk: Uint8Array): void;
  /** A platform event for the app's log. */
  event(appId: string, line: string): void;
  log: { warn(obj: object, msg: string): void };
}

/** One request's outcome, as the gateway reports it to its hooks. */
export interface RequestFinished {
  tenant: TenantRecord;
  app: AppRecord;
  method: string;
  path: string;
  requestId: string;
  status: number;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  code?: ErrorCode;
  /** Served by another node of the cluster. */
  forwarded?: boolean;
  /** Why the app failed (the 502/504 body's reason), with the trap's report when it trapped. */
  failure?: { message: string; trap?: TrapReport };
}

const STREAM_AFTER = 64 * 1024;
const NO_ARGS: string[] = [];
const EMPTY_BODY = new Uint8Array(0);

interface RouteEntry {
  prefix: string;
  appId: string;
}

/**
 * Routes by host, then by the longest path prefix on a segment boundary;
 * routes on host "*" apply to any host that has no match of its own.
 */
export class RouteTable {
  private byHost = new Map<string, RouteEntry[]>();

  load(rows: { host: string; pathPrefix: string; appId: string }[]): void {
    const next = new Map<string, RouteEntry[]>();
    for (const r of rows) {
      const list = next.get(r.host) ?? [];
      list.push({ prefix: r.pathPrefix, appId: r.appId });
      next.set(r.host, list);
    }
    for (const list of next.values()) list.sort((a, b) => b.prefix.length - a.prefix.length);
    this.byHost = next; // swapped whole: a lookup never sees a half-built table
  }

  match(host: string, path: string): RouteEntry | undefined {
    return matchIn(this.byHost.get(host), path) ?? matchIn(this.byHost.get("*"), path);
  }
}

function matchIn(list: RouteEntry[] | undefined, path: string): RouteEntry | undefined {
  if (!list) return undefined;
  for (const r of list) {
    if (r.prefix === "/" || path === r.prefix || path.startsWith(r.prefix + "/")) return r;
  }
  return undefined;
}

/** What the gateway reads of the store: routes and the records of routed apps (a serving thread gives its copy). */
export interface GatewayStore {
  apps: Pick<NodeStore["apps"], "routes" | "get">;
  tenants: Pick<NodeStore["tenants"], "find">;
}

export interface GatewayOptions {
  store: GatewayStore;
  /** Runs requests (a serving thread gives its own, see serving-thread.ts). */
  manager: Pick<ResourceManager, "invoke" | "deployment">;
  hooks: GatewayHooks;
  /** Time to receive a request body, ms. Default 30 000. */
  bodyTimeoutMs?: number;
  /** Caps on open connections (total, per client address) and the headers deadline. */
  connections?: ConnectionGuard;
  /** In a cluster: sends a request for an app with no replica on this node to a node that runs one. */
  forward?: (f: ForwardRequest, res: ServerResponse) => Promise<ForwardResult>;
}

export class Gateway {
  readonly routes = new RouteTable();
  readonly server: Server;
  private port = 0;
  /** Forwarded requests from other nodes of the cluster arrive here (a private Unix socket). */
  private internal: Server | undefined;
  private readonly appCache = new Map<string, { app: AppRecord; tenant: TenantRecord }>();
  private closing = false;

  constructor(private readonly opts: GatewayOptions) {
    const requestTimeout = opts.bodyTimeoutMs ?? 30_000;
    const timeouts = opts.connections ? httpTimeouts(opts.connections.limits, requestTimeout) : { requestTimeout };
    this.server = createServer({ ...timeouts, keepAliveTimeout: 5000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        opts.hooks.log.warn({ err }, "gateway request failed");
        if (!res.headersSent) sendError(res, new ApiError("internal"), newRequestId());
        else res.destroy();
      });
    });
    opts.connections?.attach(this.server);
    this.reload();
  }

  /** Re-reads routes and app records after a deploy, update or delete. */
  reload(): void {
    this.routes.load(this.opts.store.apps.routes());
    this.appCache.clear();
  }

  /**
   * Listens on a Unix socket (mode 0600) for requests other nodes forward
   * here: served like any request, never forwarded again, with the client
   * address and request id the entry node gave.
   */
  async listenInternal(socketPath: string): Promise<void> {
    const server = createServer({ requestTimeout: this.opts.bodyTimeoutMs ?? 30_000, keepAliveTimeout: 60_000 }, (req, res) => {
      this.handle(req, res, true).catch((err: unknown) => {
        this.opts.hooks.log.warn({ err }, "gateway request failed");
        if (!res.headersSent) sendError(res, new ApiError("internal"), newRequestId());
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    this.internal = server;
  }

  /** Serves connections accepted on a listening socket another thread opened (a serving thread, see serving-threads.ts). */
  async listenOnHandle(fd: number, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ fd }, () => resolve());
    });
    this.port = port;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  private lookup(appId: string): { app: AppRecord; tenant: TenantRecord } | undefined {
    let hit = this.appCache.get(appId);
    if (!hit) {
      const app = this.opts.store.apps.get(appId);
      const tenant = app && this.opts.store.tenants.find(app.tenantId);
      if (!app || !tenant) return undefined;
      hit = { app, tenant };
      this.appCache.set(appId, hit);
    }
    return hit;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, internal = false): Promise<void> {
    const started = performance.now();
    let requestId: string;
    let forwardedFor: string | undefined;
    if (internal) {
      // Forwarded by another node: keep its request id and client address; the guest sees neither header.
      const id = req.headers[FORWARDED_ID];
      requestId = typeof id === "string" && /^[0-9a-f]{1,32}$/.test(id) ? id : newRequestId();
      const ff = req.headers[FORWARDED_FOR];
      forwardedFor = typeof ff === "string" ? ff : undefined;
      delete req.headers[FORWARDED_ID];
      delete req.headers[FORWARDED_FOR];
    } else requestId = newRequestId();
    res.setHeader("x-request-id", requestId);
    if (this.closing) res.setHeader("connection", "close");
    const url = req.url ?? "/";
    let target: RequestTarget;
    try {
      target = requestTarget(req);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      req.resume();
      res.setHeader("connection", "close");
      sendError(res, new ApiError("bad_request", `Bad request: ${err.message}.`), requestId);
      return;
    }
    const { host, path } = target;
    const route = this.routes.match(host, path);
    const found = route && this.lookup(route.appId);
    if (!route || !found) {
      req.resume();
      sendError(res, new ApiError("no_route", `No app is deployed at ${host}${path}.`), requestId);
      return;
    }
    const { app, tenant } = found;
    const hooks = this.opts.hooks;
    let bytesOut = 0;
    const finish = (status: number, code?: ErrorCode, bytesIn = 0, more: { forwarded?: boolean; failure?: RequestFinished["failure"] } = {}) =>
      hooks.finished({ tenant, app, method: req.method ?? "GET", path, requestId, status, ms: performance.now() - started, bytesIn, bytesOut, ...(code ? { code } : {}), ...(more.forwarded ? { forwarded: true } : {}), ...(more.failure ? { failure: more.failure } : {}) });

    const limit = app.config.limits.maxBodyBytes;
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) {
      req.resume();
      res.setHeader("connection", "close");
      sendError(res, new ApiError("payload_too_large", `The request body (${declared} bytes) is over this app's limit of ${limit} bytes.`), requestId);
      finish(413, "payload_too_large");
      return;
    }
    let body: Uint8Array;
    try {
      // No Content-Length and no Transfer-Encoding: HTTP/1.1 says there is no body (most GETs); skip the stream.
      body = declared === 0 && req.headers["transfer-encoding"] === undefined ? EMPTY_BODY : await readBody(req, limit);
    } catch (err) {
      if (err instanceof ApiError) {
        res.setHeader("connection", "close");
        sendError(res, err, requestId);
        finish(err.status, err.code);
        return;
      }
      throw err;
    }

    if (this.opts.forward && !internal && !this.opts.manager.deployment(app.id)) {
      // No replica here: a node of the cluster that runs one answers. The deadline covers its queue wait and run.
      const t = app.config.limits.timeoutMs;
      const r = await this.opts.forward(
        { appId: app.id, method: req.method ?? "GET", url, headers: req.headers, remoteAddr: req.socket.remoteAddress ?? "", requestId, body, timeoutMs: t + Math.min(t, 30_000) + 1000, maxResponseBytes: app.config.limits.stdoutBytes },
        res,
      );
      if ("error" in r) {
        const e = new ApiError(r.error.code, r.error.message, r.error.retryAfter);
        sendError(res, e, requestId);
        finish(e.status, e.code, body.length, { forwarded: true });
      } else {
        bytesOut = r.bytesOut;
        finish(r.status, undefined, body.length, { forwarded: true });
      }
      return;
    }
    let args: string[] = NO_ARGS;
    if (app.config.abi !== "reactor") {
      try {
        args = cgiArgs(route.prefix === "/" ? `/${app.name}` : route.prefix, target.query);
      } catch (err) {
        if (!(err instanceof BadRequest)) throw err;
        const e = new ApiError("bad_request", `Bad request: ${err.message}.`);
        sendError(res, e, requestId);
        finish(e.status, e.code, body.length);
        return;
      }
    }
    const env = cgiEnv({ req, requestId, target, scriptName: route.prefix, route: `${host}${route.prefix}`, host, serverPort: this.port, bodyLength: body.length }, app.config.env);
    if (forwardedFor !== undefined) env.REMOTE_ADDR = env.REMOTE_HOST = forwardedFor;
    let cgiFailure: string | undefined;
    // Small responses are held and sent in one write with Content-Length;
    // past STREAM_AFTER bytes the body streams (chunked) as the guest writes it.
    let held: Uint8Array[] | undefined = [];
    let heldBytes = 0;
    // 204 and 304 have no body (RFC 9110 15.3.5, 15.4.5): what the guest writes after the headers is dropped.
    let noBody = false;
    let dropped = 0;
    // A lent chunk (sinks.lendStdout) is the executor's until the socket has written it.
    let written: Promise<void> | undefined;
    const parser = new CgiResponseParser(
      (head) => {
        res.statusCode = head.status;
        noBody = head.status === 204 || head.status === 304;
        for (const [k, v] of head.headers) res.appendHeader(k, v);
      },
      (chunk) => {
        bytesOut += chunk.length;
        if (bytesOut > app.config.limits.stdoutBytes) throw new CgiError(`the response is over this app's limit of ${app.config.limits.stdoutBytes} bytes (limits.stdoutBytes)`);
        if (noBody) {
          dropped += chunk.length;
          return;
        }
        if (held) {
          held.push(isLent(chunk) ? chunk.slice() : chunk);
          heldBytes += chunk.length;
          if (heldBytes <= STREAM_AFTER) return;
          for (const c of held) res.write(c);
          held = undefined;
          return;
        }
        if (isLent(chunk)) written = writeLent(res, chunk);
        else res.write(chunk);
      },
    );
    let outcome: InvokeResult;
    try {
      outcome = await this.opts.manager.invoke(app.id, {
        env,
        args,
        body,
        sinks: {
          onStdout: (chunk) => {
            if (cgiFailure) return;
            try {
              parser.push(chunk);
            } catch (err) {
              cgiFailure = err instanceof CgiError ? err.message : String(err);
            }
            const w = written;
            written = undefined;
            return w;
          },
          lendStdout: true,
          onStderr: (chunk) => hooks.stderr(app.id, chunk),
        },
      });
    } catch (err) {
      if (err instanceof Refusal) {
        const e = new ApiError(err.code, err.message, err.retryAfter);
        sendError(res, e, requestId);
        finish(e.status, e.code, body.length);
        return;
      }
      throw err;
    }

    const failed = outcome.reason !== "exit" || (app.config.abi === "reactor" && outcome.exitCode !== 0);
    if (!parser.done || cgiFailure || failed) {
      if (res.headersSent) {
        // Headers are out; the only honest signal left is an aborted response.
        hooks.event(app.id, `request ${requestId}: ${describe(outcome)} after the response started; connection reset${backtraceLines(outcome.trap)}`);
        res.destroy();
        finish(res.statusCode, "guest_error", body.length, { failure: { message: `${describe(outcome)} after the response started`, ...(outcome.trap ? { trap: outcome.trap } : {}) } });
        return;
      }
      const timeout = outcome.reason === "deadline_exceeded";
      const why = failed ? describe(outcome) : cgiFailure ?? (outcome.exitCode === 0 ? "the app wrote no response headers (expected `Content-Type: ...` then an empty line)" : `the app exited with code ${outcome.exitCode} without a response`);
      hooks.event(app.id, `request ${requestId}: ${why}${failed ? backtraceLines(outcome.trap) : ""}`);
      res.removeHeader("content-type");
      for (const name of res.getHeaderNames()) if (name !== "x-request-id") res.removeHeader(name);
      const e = timeout
        ? new ApiError("guest_timeout", outcome.loaned
          ? `The app did not answer within ${outcome.deadlineMs} ms, the deadline of a request beyond tenant ${tenant.name}'s share of executors while other tenants are active (request ${requestId}).`
          : `The app did not answer within ${outcome.deadlineMs} ms (request ${requestId}).`)
        : new ApiError("guest_error", `The app failed: ${why} (request ${requestId}).`);
      sendError(res, e, requestId);
      finish(e.status, e.code, body.length, { failure: { message: why, ...(outcome.trap ? { trap: outcome.trap } : {}) } });
      return;
    }
    if (noBody) {
      if (dropped > 0) hooks.event(app.id, `request ${requestId}: ${dropped} body bytes after Status ${res.statusCode} dropped (a ${res.statusCode} has no body)`);
      bytesOut = 0;
      res.end();
    } else if (held) {
      const body = held.length === 1 ? held[0]! : Buffer.concat(held);
      res.setHeader("content-length", body.length);
      res.end(body);
    } else res.end();
    finish(res.statusCode, undefined, body.length);
  }

  /** Lets in-flight requests finish and closes every connection as it goes idle, without closing the listener. */
  drain(): Promise<void> {
    this.closing = true;
    return new Promise<void>((resolve) => {
      const sweep = setInterval(() => {
        this.server.closeIdleConnections();
        this.server.getConnections((err, n) => {
          if (err || n === 0) {
            clearInterval(sweep);
            resolve();
          }
        });
      }, 20);
    });
  }

  /** Stops accepting; in-flight requests finish, keep-alive connections close as they go idle. */
  close(): Promise<void> {
    this.closing = true;
    const drain = (server: Server) =>
      new Promise<void>((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 20);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
    return Promise.all([drain(this.server), ...(this.internal ? [drain(this.internal)] : [])]).then(() => undefined);
  }
}

/** A chunk lent from an executor's output ring (shared memory): valid only until given back. */
function isLent(chunk: Uint8Array): boolean {
  return chunk.buffer instanceof SharedArrayBuffer;
}

/**
 * Writes a lent chunk; settles once the socket no longer needs it (written
 * to the kernel, or the response is gone), so that the executor may reuse
 * its bytes: until then the guest's ring fills, and it waits for its reader.
 */
function writeLent(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("close", done);
      resolve();
    };
    res.on("close", done);
    res.write(chunk, done);
  });
}

/** A trap's backtrace under its log line (the app's log is where `uniwasm logs` and the dashboard look). */
function backtraceLines(trap: TrapReport | undefined): string {
  return trap && trap.frames.length > 0 ? `\nwasm backtrace:\n${trap.backtrace}` : "";
}

function describe(o: RunOutcome): string {
  if (o.reason === "exit") return `exit code ${o.exitCode}${o.message ? ` (${o.message})` : ""}`;
  return `${o.reason}${o.message ? `: ${o.message}` : ""}`;
}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new ApiError("payload_too_large", `The request body is over this app's limit of ${limit} bytes.`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(chunks.length === 1 ? new Uint8Array(chunks[0]!) : new Uint8Array(Buffer.concat(chunks))));
    req.on("error", reject);
  });
}

// Request ids: a random per-process prefix and a counter (unique, cheap, unguessable enough for logs).
const ID_PREFIX = randomBytes(5).toString("hex");
let idCounter = 0;
export function newRequestId(): string {
  return `${ID_PREFIX}${(++idCounter).toString(16).padStart(6, "0")}`;
}

function sendError(res: ServerResponse, err: ApiError, requestId: string): void {
  if (err.retryAfter !== undefined) res.setHeader("retry-after", String(Math.max(1, Math.ceil(err.retryAfter))));
  const body = JSON.stringify(err.body(requestId));
  res.writeHead(err.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
