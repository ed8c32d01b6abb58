/**
 * Routing between nodes. A gateway request for an app with no replica on
 * this node goes over NATS request/reply to the app's subject, which every
 * node running a replica subscribes to in one queue group: NATS picks one
 * replica (and skips dead nodes as soon as their connection drops). The
 * serving node hands the request to its own gateway over a private Unix
 * socket, so a forwarded request is served by exactly the code that serves a
 * local one, and streams the response back in chunks.
 *
 * Request bodies travel in one message (capped by the servers' max_payload);
 * responses stream (a head, body chunks, an empty end marker). The deadline
 * travels with the request as the time left: the serving node gives up at the
 * same moment as the entry node. Subjects are internal: a tenant only ever
 * sees HTTP and the node's error codes.
 */
import { Agent, request, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import { headers as natsHeaders, Empty, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";

const SUBJECT_PREFIX = "uniwasm.app.";
const QUEUE = "replicas";
/** Response chunks are cut to this size (well below any max_payload). */
const CHUNK = 256 * 1024;
/**
 * The serving node says "working on it" this often until it answers; the
 * entry node gives a request up after STALL_MS without a word (the serving
 * node died), instead of waiting for the app's whole deadline.
 */
const BEAT_MS = 1000;
const STALL_MS = 3000;

/** Headers a forwarded request carries to the serving node's gateway (which strips them). */
export const FORWARDED_FOR = "x-uniwasm-forwarded-for";
export const FORWARDED_ID = "x-uniwasm-request-id";

/** Hop-by-hop headers, and credentials meant for the node (guests never see them anyway). */
const DROP_REQUEST = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "proxy-authorization", "authorization", "content-length", FORWARDED_FOR, FORWARDED_ID]);
/** Hop-by-hop headers, and the request id the entry node has already set (the same id). */
const DROP_RESPONSE = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "x-request-id"]);

export interface ForwardRequest {
  appId: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  remoteAddr: string;
  requestId: string;
  body: Uint8Array;
  /** Time left for the whole request, ms. */
  timeoutMs: number;
  maxResponseBytes: number;
}

export type ForwardError = { code: "app_unavailable" | "guest_timeout" | "payload_too_large"; message: string; retryAfter?: number };
export type ForwardResult = { status: number; bytesOut: number } | { error: ForwardError };

/** The head of a forwarded response: a status and raw header pairs, or why there is none. */
type Head = { s: number; h: string[] } | { e: ForwardError["code"]; m: string };

interface RequestHead {
  m: string;
  u: string;
  h: Record<string, string | string[]>;
  r: string;
  id: string;
  t: number;
}

export interface RouterOptions {
  /** The serving side: this node's gateway, listening on a private Unix socket. */
  socketPath: string;
  /** Connection state: forwarding fails at once while NATS is unreachable. */
  link?: { connected: boolean };
  onError?: (err: Error) => void;
}

export class Router {
  private readonly subs = new Map<string, Subscription>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1024 });

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: RouterOptions,
  ) {}

  /** Largest body a forwarded request may carry. */
  get maxBodyBytes(): number {
    return Math.max(0, (this.nc.info?.max_payload ?? 1024 * 1024) - 16 * 1024);
  }

  /** Forwards a request to a node that runs the app and writes its answer to `res`; without an answer, says why (res untouched). */
  async forward(f: ForwardRequest, res: ServerResponse): Promise<ForwardResult> {
    if (this.opts.link && !this.opts.link.connected) return { error: unavailable(new Error("disconnected")) };
    if (f.body.length > this.maxBodyBytes) {
      return { error: { code: "payload_too_large", message: `The request body (${f.body.length} bytes) is over the ${this.maxBodyBytes} bytes a request forwarded between the cluster's nodes may carry.` } };
    }
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(f.headers)) if (v !== undefined && !DROP_REQUEST.has(k)) h[k] = v;
    const head: RequestHead = { m: f.method, u: f.url, h, r: f.remoteAddr, id: f.requestId, t: Math.max(1, Math.floor(f.timeoutMs)) };
    const hdrs = natsHeaders();
    hdrs.set("uw-head", JSON.stringify(head));
    let iter: AsyncIterable<Msg> & { stop?: () => void };
    try {
      iter = await this.nc.requestMany(SUBJECT_PREFIX + f.appId, f.body, { strategy: "sentinel", maxWait: head.t + 250, headers: hdrs });
    } catch (err) {
      return { error: unavailable(err) };
    }
    let status = 0;
    let started = false;
    let end: string | undefined;
    let bytesOut = 0;
    let lastHeard = Date.now();
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard < STALL_MS) return;
      stalled = true;
      iter.stop?.();
    }, STALL_MS / 3);
    try {
      for await (const m of iter) {
        lastHeard = Date.now();
        const kind = m.headers?.get("uw-kind");
        if (kind === "beat") continue;
        if (kind === "head") {
          const hd = JSON.parse(new TextDecoder().decode(m.data)) as Head;
          if ("e" in hd) return { error: { code: hd.e, message: hd.m } };
          status = hd.s;
          for (let i = 0; i + 1 < hd.h.length; i += 2) if (!DROP_RESPONSE.has(hd.h[i]!.toLowerCase())) res.appendHeader(hd.h[i]!, hd.h[i + 1]!);
          res.statusCode = status;
          started = true;
          continue;
        }
        if (m.data.length === 0) {
          end = m.headers?.get("uw-end") ?? "reset";
          break;
        }
        if (!started) continue;
        bytesOut += m.data.length;
        if (bytesOut > f.maxResponseBytes) break;
        res.write(m.data);
      }
    } catch (err) {
      if (!started) return { error: unavailable(err) };
    } finally {
      clearInterval(watchdog);
    }
    if (!started && stalled) return { error: { code: "app_unavailable", message: `The node serving this request stopped answering (request ${f.requestId}); retry.`, retryAfter: 1 } };
    if (!started) return { error: { code: "guest_timeout", message: `The node running this app did not answer within ${head.t} ms.` } };
    if (end === "ok") res.end();
    else res.destroy();
    return { status, bytesOut };
  }

  /** Starts answering the app's forwarded requests on this node. */
  serve(appId: string): void {
    if (this.subs.has(appId)) return;
    const sub = this.nc.subscribe(SUBJECT_PREFIX + appId, {
      queue: QUEUE,
      callback: (err, msg) => {
        if (!err) this.respond(msg);
      },
    });
    this.subs.set(appId, sub);
  }

  unserve(appId: string): void {
    this.subs.get(appId)?.unsubscribe();
    this.subs.delete(appId);
  }

  private respond(msg: Msg): void {
    const reply = msg.reply;
    if (!reply) return;
    let head: RequestHead;
    try {
      head = JSON.parse(msg.headers?.get("uw-head") ?? "") as RequestHead;
    } catch {
      return; // not a forwarded request (only cluster members can publish here)
    }
    const send = (data: Uint8Array | string, end?: "ok" | "reset", kind?: "head" | "beat") => {
      try {
        if (end || kind) {
          const h = natsHeaders();
          if (end) h.set("uw-end", end);
          if (kind) h.set("uw-kind", kind);
          this.nc.publish(reply, end ? Empty : data, { headers: h });
        } else this.nc.publish(reply, data);
      } catch {
        // the connection is gone: the entry node gives up after STALL_MS
      }
    };
    send("b", undefined, "beat");
    const beat = setInterval(() => send("b", undefined, "beat"), BEAT_MS);
    let headSent = false;
    let done = false;
    const finish = (end: "ok" | "reset") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(beat);
      send(Empty, end);
    };
    const fail = (code: ForwardError["code"], m: string) => {
      if (done) return;
      if (headSent) return finish("reset");
      done = true;
      clearTimeout(timer);
      clearInterval(beat);
      send(JSON.stringify({ e: code, m } satisfies Head), undefined, "head");
    };
    const req = request({
      socketPath: this.opts.socketPath,
      agent: this.agent,
      method: head.m,
      path: head.u,
      headers: { ...head.h, [FORWARDED_FOR]: head.r, [FORWARDED_ID]: head.id, "content-length": String(msg.data.length) },
    });
    // The deadline came as time left: give up when the entry node does.
    const timer = setTimeout(() => {
      fail("guest_timeout", `The app did not answer within ${head.t} ms (request ${head.id}).`);
      req.destroy();
    }, head.t);
    req.on("response", (res) => {
      if (done) return void res.resume();
      send(JSON.stringify({ s: res.statusCode ?? 502, h: res.rawHeaders } satisfies Head), undefined, "head");
      headSent = true;
      res.on("data", (c: Buffer) => {
        if (done) return;
        for (let i = 0; i < c.length; i += CHUNK) send(c.subarray(i, i + CHUNK));
      });
      res.on("end", () => finish("ok"));
      res.on("aborted", () => finish("reset"));
      res.on("error", () => finish("reset"));
    });
    req.on("error", (err) => {
      if (!headSent && !done) this.opts.onError?.(new Error(`forwarded request ${head.id} failed on this node: ${err.message}`));
      fail("app_unavailable", `The node running this app could not serve it (request ${head.id}).`);
    });
    req.end(msg.data);
  }

  close(): void {
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    this.agent.destroy();
  }
}

function unavailable(err: unknown): ForwardError {
  // NATS errors name subjects: never passed on to tenants.
  if ((err as Error).name === "NoResponders") return { code: "app_unavailable", message: "No node of the cluster runs this app right now; retry shortly.", retryAfter: 1 };
  return { code: "app_unavailable", message: "The node running this app cannot be reached (the cluster's messaging is down); retry shortly.", retryAfter: 1 };
}
