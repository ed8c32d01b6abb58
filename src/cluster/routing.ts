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
 * responses stream (a head with the first bytes, body chunks, an empty end
 * marker). The deadline travels with the request as the time left: the
 * serving node gives up at the same moment as the entry node. While the app
 * works, the serving node beats every BEAT_MS; an entry node that hears
 * nothing for STALL_MS (the serving node died) answers at once instead of
 * waiting out the deadline. Subjects are internal: a tenant only ever sees
 * HTTP and the node's error codes.
 */
import { Agent, request, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";

const SUBJECT_PREFIX = "uniwasm.app.";
const QUEUE = "replicas";
/** Response chunks are cut to this size (well below any max_payload). */
const CHUNK = 256 * 1024;
/**
 * The wire format, binary (no NATS headers: parsing them is most of a small
 * message's cost). A request is [u32 head length][head JSON][body]. Replies
 * start with a tag byte: B beat; H head: [flags: 1 = the answer is complete]
 * [u32 length][head JSON][first body bytes]; D body chunk; E end; R reset.
 */
const BEAT = 0x42;
const HEAD = 0x48;
const DATA = 0x44;
const END = 0x45;
const RESET = 0x52;
const BEAT_MSG = new Uint8Array([BEAT]);
const END_MSG = new Uint8Array([END]);
const RESET_MSG = new Uint8Array([RESET]);

function frameHead(json: string, complete: boolean, body: Uint8Array): Uint8Array {
  const j = Buffer.from(json);
  const out = Buffer.allocUnsafe(6 + j.length + body.length);
  out[0] = HEAD;
  out[1] = complete ? 1 : 0;
  out.writeUInt32BE(j.length, 2);
  j.copy(out, 6);
  out.set(body, 6 + j.length);
  return out;
}

/** Beat period of a serving node, and the silence after which an entry node gives a request up. */
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

/** A service call (uniwasm:service) between apps of a tenant, checked on the caller's node. */
interface ServiceHead {
  svc: 1;
  /** The caller's app name, and the call chain (app ids, outermost first). */
  c: string;
  ch: string[];
  t: number;
}

export interface ServiceCallRequest {
  appId: string;
  callerName: string;
  chain: string[];
  input: Uint8Array;
  timeoutMs: number;
}

export type ServiceAnswer = { status: number; body: Uint8Array };

export interface RouterOptions {
  /** The serving side: this node's gateway, listening on a private Unix socket. */
  socketPath: string;
  /** Connection state: forwarding fails at once while NATS is unreachable. */
  link?: { connected: boolean };
  /** Serves a service call another node forwarded to an app running here. */
  onService?: (call: ServiceCallRequest) => Promise<ServiceAnswer>;
  onError?: (err: Error) => void;
}

interface InFlight {
  lastHeard: number;
  stalled: boolean;
  stop(): void;
}

export class Router {
  private readonly subs = new Map<string, Subscription>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  /** Forwarded requests waiting for an answer here (one watchdog for all of them). */
  private readonly waiting = new Set<InFlight>();
  /** Requests this node is serving for others (one beat timer for all of them). */
  private readonly serving = new Set<() => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: RouterOptions,
  ) {
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const w of this.waiting) {
        if (now - w.lastHeard >= STALL_MS) {
          w.stalled = true;
          w.stop();
        }
      }
      for (const beat of this.serving) beat();
    }, BEAT_MS);
    this.timer.unref();
  }

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
    const hj = Buffer.from(JSON.stringify(head));
    const payload = Buffer.allocUnsafe(4 + hj.length + f.body.length);
    payload.writeUInt32BE(hj.length, 0);
    hj.copy(payload, 4);
    payload.set(f.body, 4 + hj.length);
    let iter: AsyncIterable<Msg> & { stop?: () => void };
    try {
      // The answer ends with our own end frame (the loop breaks); "sentinel" only bounds the wait by maxWait.
      iter = await this.nc.requestMany(SUBJECT_PREFIX + f.appId, payload, { strategy: "sentinel", maxWait: head.t + 250 });
    } catch (err) {
      return { error: unavailable(err) };
    }
    let status = 0;
    let started = false;
    let end: string | undefined;
    let bytesOut = 0;
    const w: InFlight = { lastHeard: Date.now(), stalled: false, stop: () => iter.stop?.() };
    this.waiting.add(w);
    try {
      for await (const m of iter) {
        w.lastHeard = Date.now();
        const d = m.data;
        const tag = d[0];
        let chunk: Uint8Array | undefined;
        if (tag === BEAT) continue;
        else if (tag === HEAD) {
          const len = Buffer.from(d.buffer, d.byteOffset, d.byteLength).readUInt32BE(2);
          const hd = JSON.parse(Buffer.from(d.buffer, d.byteOffset + 6, len).toString()) as Head;
          if ("e" in hd) return { error: { code: hd.e, message: hd.m } };
          status = hd.s;
          for (let i = 0; i + 1 < hd.h.length; i += 2) if (!DROP_RESPONSE.has(hd.h[i]!.toLowerCase())) res.appendHeader(hd.h[i]!, hd.h[i + 1]!);
          res.statusCode = status;
          started = true;
          chunk = d.subarray(6 + len);
          if (d[1] === 1) end = "ok";
        } else if (tag === DATA) chunk = d.subarray(1);
        else {
          end = tag === END ? "ok" : "reset";
          break;
        }
        if (chunk && chunk.length > 0) {
          bytesOut += chunk.length;
          if (bytesOut > f.maxResponseBytes) {
            end = "reset";
            break;
          }
          res.write(chunk);
        }
        if (end) break;
      }
    } catch (err) {
      if (!started) return { error: unavailable(err) };
    } finally {
      this.waiting.delete(w);
    }
    if (!started && w.stalled) return { error: { code: "app_unavailable", message: `The node serving this request stopped answering (request ${f.requestId}); retry.`, retryAfter: 1 } };
    if (!started) return { error: { code: "guest_timeout", message: `The node running this app did not answer within ${head.t} ms.` } };
    if (end === "ok") res.end();
    else res.destroy();
    return { status, bytesOut };
  }

  /**
   * Calls an app that runs on another node, for a service call checked here
   * (grants, tenant, cycles): one request, one answer (both capped by
   * max_payload). Failures come back as answers, as on one node.
   */
  async callService(call: ServiceCallRequest): Promise<ServiceAnswer> {
    const answer = (status: number, message: string): ServiceAnswer => ({ status, body: new TextEncoder().encode(JSON.stringify({ error: { message } })) });
    if (this.opts.link && !this.opts.link.connected) return answer(503, "the node running the callee cannot be reached (the cluster's messaging is down)");
    if (call.input.length > this.maxBodyBytes) return answer(413, `the input (${call.input.length} bytes) is over the ${this.maxBodyBytes} bytes a call between the cluster's nodes may carry`);
    const head: ServiceHead = { svc: 1, c: call.callerName, ch: call.chain, t: Math.max(1, Math.floor(call.timeoutMs)) };
    const hj = Buffer.from(JSON.stringify(head));
    const payload = Buffer.allocUnsafe(4 + hj.length + call.input.length);
    payload.writeUInt32BE(hj.length, 0);
    hj.copy(payload, 4);
    payload.set(call.input, 4 + hj.length);
    let reply: Msg;
    try {
      reply = await this.nc.request(SUBJECT_PREFIX + call.appId, payload, { timeout: head.t + 250 });
    } catch (err) {
      // A NATS request error may wrap the reason (NoResponders) as its cause.
      const name = (err as Error).name;
      const cause = ((err as Error).cause as Error | undefined)?.name;
      if (name === "NoResponders" || cause === "NoResponders") return answer(503, "no node of the cluster runs the callee right now");
      if (name === "TimeoutError") return answer(504, `the callee did not answer within ${head.t} ms`);
      return answer(503, "the node running the callee cannot be reached");
    }
    const d = reply.data;
    if (d[0] !== HEAD) return answer(502, "the node running the callee answered out of turn");
    const len = Buffer.from(d.buffer, d.byteOffset, d.byteLength).readUInt32BE(2);
    const hd = JSON.parse(Buffer.from(d.buffer, d.byteOffset + 6, len).toString()) as Head;
    if ("e" in hd) return answer(hd.e === "guest_timeout" ? 504 : 503, hd.m);
    return { status: hd.s, body: new Uint8Array(d.subarray(6 + len)) };
  }

  /** Starts answering the app's forwarded requests on this node; resolves once the servers know. */
  async serve(appId: string): Promise<void> {
    if (this.subs.has(appId)) return;
    const sub = this.nc.subscribe(SUBJECT_PREFIX + appId, {
      queue: QUEUE,
      callback: (err, msg) => {
        if (!err) this.respond(appId, msg);
      },
    });
    this.subs.set(appId, sub);
    // A round trip: the servers have the subscription (bounded, as NATS may be away right now).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.nc.flush().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }

  unserve(appId: string): void {
    this.subs.get(appId)?.unsubscribe();
    this.subs.delete(appId);
  }

  /**
   * Serves one forwarded request through this node's gateway and streams the
   * answer back: the head with the first body bytes, more chunks past CHUNK,
   * then an empty end message (a body-less answer is one message). Beats go
   * out while the app works on it.
   */
  private respond(appId: string, msg: Msg): void {
    const reply = msg.reply;
    if (!reply) return;
    let head: RequestHead | ServiceHead;
    let body: Uint8Array;
    try {
      const d = msg.data;
      const len = Buffer.from(d.buffer, d.byteOffset, d.byteLength).readUInt32BE(0);
      head = JSON.parse(Buffer.from(d.buffer, d.byteOffset + 4, len).toString()) as RequestHead | ServiceHead;
      body = d.subarray(4 + len);
    } catch {
      return; // not a forwarded request (only cluster members can publish here)
    }
    if ("svc" in head) return this.serveCall(appId, head, body, reply);
    const publish = (data: Uint8Array) => {
      try {
        this.nc.publish(reply, data);
      } catch {
        // the connection is gone: the entry node gives up after STALL_MS
      }
    };
    const beat = () => publish(BEAT_MSG);
    this.serving.add(beat);
    let headJson: string | undefined;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let headSent = false;
    let done = false;
    const close = () => {
      done = true;
      clearTimeout(timer);
      this.serving.delete(beat);
    };
    const flushHead = (complete: boolean) => {
      const first = held.length === 1 ? held[0]! : Buffer.concat(held);
      held = [];
      headSent = true;
      publish(frameHead(headJson!, complete, first));
    };
    const finish = (end: "ok" | "reset") => {
      if (done) return;
      close();
      if (!headSent && end === "ok") flushHead(true);
      else publish(end === "ok" ? END_MSG : RESET_MSG);
    };
    const fail = (code: ForwardError["code"], m: string) => {
      if (done) return;
      if (headSent) return finish("reset");
      close();
      publish(frameHead(JSON.stringify({ e: code, m } satisfies Head), true, new Uint8Array(0)));
    };
    const req = request({
      socketPath: this.opts.socketPath,
      agent: this.agent,
      method: head.m,
      path: head.u,
      headers: { ...head.h, [FORWARDED_FOR]: head.r, [FORWARDED_ID]: head.id, "content-length": String(body.length) },
    });
    // The deadline came as time left: give up when the entry node does.
    const timer = setTimeout(() => {
      fail("guest_timeout", `The app did not answer within ${head.t} ms (request ${head.id}).`);
      req.destroy();
    }, head.t);
    req.on("response", (res) => {
      if (done) return void res.resume();
      headJson = JSON.stringify({ s: res.statusCode ?? 502, h: res.rawHeaders } satisfies Head);
      res.on("data", (c: Buffer) => {
        if (done) return;
        if (!headSent) {
          held.push(c);
          heldBytes += c.length;
          if (heldBytes < CHUNK) return;
          flushHead(false);
          return;
        }
        for (let i = 0; i < c.length; i += CHUNK) {
          const part = c.subarray(i, i + CHUNK);
          const framed = Buffer.allocUnsafe(1 + part.length);
          framed[0] = DATA;
          part.copy(framed, 1);
          publish(framed);
        }
      });
      res.on("end", () => finish("ok"));
      res.on("aborted", () => finish("reset"));
      res.on("error", () => finish("reset"));
    });
    req.on("error", (err) => {
      if (!headSent && !done) this.opts.onError?.(new Error(`forwarded request ${head.id} failed on this node: ${err.message}`));
      fail("app_unavailable", `The node running this app could not serve it (request ${head.id}).`);
    });
    req.end(body);
  }

  private serveCall(appId: string, head: ServiceHead, input: Uint8Array, reply: string): void {
    const send = (frame: Uint8Array) => {
      try {
        this.nc.publish(reply, frame);
      } catch {
        // the caller's node times out
      }
    };
    const fail = (code: ForwardError["code"], m: string) => send(frameHead(JSON.stringify({ e: code, m } satisfies Head), true, new Uint8Array(0)));
    if (!this.opts.onService) return fail("app_unavailable", "this node does not take service calls");
    this.opts.onService({ appId, callerName: head.c, chain: head.ch, input, timeoutMs: head.t }).then(
      (a) => {
        if (a.body.length > this.maxBodyBytes) return fail("app_unavailable", `the callee's answer (${a.body.length} bytes) is over the ${this.maxBodyBytes} bytes a call between the cluster's nodes may carry`);
        send(frameHead(JSON.stringify({ s: a.status, h: [] } satisfies Head), true, a.body));
      },
      (err: unknown) => fail("app_unavailable", `the service call failed on the callee's node: ${(err as Error).message}`),
    );
  }

  close(): void {
    clearInterval(this.timer);
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    this.agent.destroy();
  }
}

function unavailable(err: unknown): ForwardError {
  // NATS errors name subjects: never passed on to tenants.
  if ((err as Error).name === "NoResponders" || ((err as Error).cause as Error | undefined)?.name === "NoResponders") return { code: "app_unavailable", message: "No node of the cluster runs this app right now; retry shortly.", retryAfter: 1 };
  return { code: "app_unavailable", message: "The node running this app cannot be reached (the cluster's messaging is down); retry shortly.", retryAfter: 1 };
}
