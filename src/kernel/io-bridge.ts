import * as net from "node:net";
import { MessageChannel, receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import { Errno } from "./abi.js";
import { KernelFault, WasiError, fromHostError } from "./errors.js";
import { ExtensionDenied, type HostCalls } from "./extensions.js";

/**
 * Blocking socket I/O for a synchronous guest. WASI calls are synchronous, but
 * Node's sockets are not: the guest's thread posts a request on a MessagePort
 * and parks on a SharedArrayBuffer (Atomics.wait); an IoServer on another
 * thread does the I/O on its event loop, posts the reply and wakes it.
 */
export interface BlockingIo {
  accept(listener: number, nonblocking: boolean): number;
  recv(conn: number, maxLen: number, peek: boolean, nonblocking: boolean): Uint8Array;
  send(conn: number, data: Uint8Array, nonblocking: boolean): number;
  shutdown(conn: number, how: number): void;
  close(handle: number): void;
  /** Readiness of handles; waits up to `timeoutMs` (null: forever) for at least one. */
  poll(interests: readonly PollInterest[], timeoutMs: number | null): PollReady[];
}

export interface PollInterest {
  handle: number;
  write: boolean;
}
export interface PollReady {
  handle: number;
  write: boolean;
  /** Bytes available to read (0 with hangup at end of stream). */
  nbytes: number;
  hangup: boolean;
  error?: Errno;
}

type Request =
  | { op: "accept"; listener: number; nonblocking: boolean }
  | { op: "recv"; conn: number; maxLen: number; peek: boolean; nonblocking: boolean }
  | { op: "send"; conn: number; data: Uint8Array; nonblocking: boolean }
  | { op: "shutdown"; conn: number; how: number }
  | { op: "close"; handle: number }
  | { op: "poll"; interests: PollInterest[]; timeoutMs: number | null }
  /** A host extension's provider method, run on the server's thread (see extensions.ts). */
  | { op: "host"; session: number; ext: string; method: string; args: unknown[] };

/** `fault`: the host failed (not the guest): the instance ends with host_fault. */
type Reply = { ok: true; value: unknown } | { ok: false; errno: Errno; message: string; fault?: boolean; denied?: boolean };

/**
 * Runs extension provider calls for the guests of one channel (`tag` names
 * the channel, e.g. the executor): resolves with the method's result, or
 * rejects with a WasiError (the guest's errno) or anything else (a host fault).
 */
export type HostCallHandler = (call: { session: number; ext: string; method: string; args: unknown[]; tag: number }) => unknown;

/** The guest-side end: synchronous calls that park the thread until the server answers. */
export class SyncIoClient implements BlockingIo, HostCalls {
  private readonly flag: Int32Array;

  constructor(private readonly port: MessagePort, signal: SharedArrayBuffer) {
    this.flag = new Int32Array(signal);
  }

  private call<T>(req: Request): T {
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage(req);
    for (;;) {
      Atomics.wait(this.flag, 0, 0, 1000);
      const msg = receiveMessageOnPort(this.port);
      if (msg) {
        const reply = msg.message as Reply;
        if (reply.ok) return reply.value as T;
        if (reply.fault) throw new KernelFault(reply.message);
        // The message crossed with its "ERRNO: " prefix; the error made here adds it again.
        const detail = reply.message.replace(/^[A-Z0-9]+: /, "");
        if (reply.denied) throw new ExtensionDenied(reply.errno, detail);
        throw new WasiError(reply.errno, detail);
      }
      if (Atomics.load(this.flag, 0) === 2) throw new KernelFault("the socket I/O server went away");
    }
  }

  accept(listener: number, nonblocking: boolean): number {
    return this.call({ op: "accept", listener, nonblocking });
  }
  recv(conn: number, maxLen: number, peek: boolean, nonblocking: boolean): Uint8Array {
    return this.call({ op: "recv", conn, maxLen, peek, nonblocking });
  }
  send(conn: number, data: Uint8Array, nonblocking: boolean): number {
    return this.call({ op: "send", conn, data: data.slice(), nonblocking });
  }
  shutdown(conn: number, how: number): void {
    this.call({ op: "shutdown", conn, how });
  }
  close(handle: number): void {
    this.call({ op: "close", handle });
  }
  poll(interests: readonly PollInterest[], timeoutMs: number | null): PollReady[] {
    return this.call({ op: "poll", interests: [...interests], timeoutMs });
  }
  hostCall(session: number, ext: string, method: string, args: unknown[]): unknown {
    return this.call({ op: "host", session, ext, method, args });
  }
}

interface Conn {
  socket: net.Socket;
  chunks: Buffer[];
  buffered: number;
  ended: boolean;
  error: Errno | null;
  waiters: Set<() => void>;
}
interface Listener {
  server: net.Server;
  pending: net.Socket[];
  waiters: Set<() => void>;
}

/** Largest single recv, so a guest's huge length cannot make the host buffer without bound. */
const MAX_RECV = 1 << 20;

/**
 * The async end: owns listening sockets and connections on its thread's event
 * loop. One server can serve many clients (one port each).
 */
export class IoServer {
  private nextHandle = 1;
  private readonly listeners = new Map<number, Listener>();
  private readonly conns = new Map<number, Conn>();
  /** Where extension provider calls go (set by the executor pool); without it they are host faults. */
  hostCalls: HostCallHandler | undefined;

  /** Opens a listening TCP socket ("127.0.0.1:8080", "[::1]:0", ":0"); returns its handle and bound address. */
  async listen(address: string): Promise<{ handle: number; address: string }> {
    const { host, port } = parseAddress(address);
    const server = net.createServer({ pauseOnConnect: false, allowHalfOpen: true });
    const l: Listener = { server, pending: [], waiters: new Set() };
    server.on("connection", (socket) => {
      l.pending.push(socket);
      wake(l.waiters);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port }, () => resolve());
    });
    const a = server.address() as net.AddressInfo;
    const handle = this.nextHandle++;
    this.listeners.set(handle, l);
    return { handle, address: a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` };
  }

  /** Creates a channel whose client end can be transferred to the guest's thread; `tag` identifies it to host calls. */
  connect(tag = 0): { port: MessagePort; signal: SharedArrayBuffer; close: () => void } {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const flag = new Int32Array(signal);
    port1.on("message", (req: Request) => {
      if (req.op === "host") return this.host(req, tag, port1, flag);
      this.handle(req).then(
        (value) => reply(port1, flag, { ok: true, value }),
        (err) => {
          const e = err instanceof WasiError ? err : fromHostError(err, req.op);
          if (e instanceof WasiError) reply(port1, flag, { ok: false, errno: e.errno, message: e.message });
          else reply(port1, flag, { ok: false, errno: Errno.IO, message: e.message });
        },
      );
    });
    port1.unref();
    return {
      port: port2,
      signal,
      close: () => {
        Atomics.store(flag, 0, 2);
        Atomics.notify(flag, 0);
        port1.close();
      },
    };
  }

  /** An extension provider call: a WasiError is the guest's errno, anything else a host fault. */
  private host(req: Extract<Request, { op: "host" }>, tag: number, port: MessagePort, flag: Int32Array): void {
    const failed = (err: unknown): void => {
      if (err instanceof WasiError) reply(port, flag, { ok: false, errno: err.errno, message: err.message, ...(err instanceof ExtensionDenied ? { denied: true } : {}) });
      else reply(port, flag, { ok: false, errno: Errno.IO, message: `${req.ext}.${req.method}: ${(err as Error)?.message ?? String(err)}`, fault: true });
    };
    try {
      if (!this.hostCalls) throw new Error("this host serves no extension calls");
      const r = this.hostCalls({ session: req.session, ext: req.ext, method: req.method, args: req.args, tag });
      if (r !== null && typeof r === "object" && typeof (r as { then?: unknown }).then === "function") {
        (r as Promise<unknown>).then((value) => reply(port, flag, { ok: true, value }), failed);
      } else reply(port, flag, { ok: true, value: r });
    } catch (err) {
      failed(err);
    }
  }

  private async handle(req: Request): Promise<unknown> {
    switch (req.op) {
      case "accept": return this.accept(req.listener, req.nonblocking);
      case "recv": return this.recv(req.conn, req.maxLen, req.peek, req.nonblocking);
      case "send": return this.send(req.conn, req.data);
      case "shutdown": return this.shutdown(req.conn, req.how);
      case "close": return this.closeHandle(req.handle);
      case "poll": return this.poll(req.interests, req.timeoutMs);
      case "host": throw new Error("host calls are answered by IoServer.host");
    }
  }

  private listener(h: number): Listener {
    const l = this.listeners.get(h);
    if (!l) throw new WasiError(Errno.BADF, `socket handle ${h} is not a listener`);
    return l;
  }

  private conn(h: number): Conn {
    const c = this.conns.get(h);
    if (!c) throw new WasiError(this.listeners.has(h) ? Errno.NOTCONN : Errno.BADF, `socket handle ${h} is not a connection`);
    return c;
  }

  private async accept(h: number, nonblocking: boolean): Promise<number> {
    const l = this.listener(h);
    while (l.pending.length === 0) {
      if (nonblocking) throw new WasiError(Errno.AGAIN, "no pending connection");
      await waitOn(l.waiters, null);
    }
    const socket = l.pending.shift()!;
    const c: Conn = { socket, chunks: [], buffered: 0, ended: false, error: null, waiters: new Set() };
    socket.on("data", (chunk: Buffer) => {
      c.chunks.push(chunk);
      c.buffered += chunk.length;
      // Backpressure: stop reading while the guest has not consumed what it has.
      if (c.buffered > MAX_RECV) socket.pause();
      wake(c.waiters);
    });
    socket.on("end", () => {
      c.ended = true;
      wake(c.waiters);
    });
    socket.on("error", (err) => {
      const e = fromHostError(err, "socket");
      c.error = e instanceof WasiError ? e.errno : Errno.IO;
      c.ended = true;
      wake(c.waiters);
    });
    // allowHalfOpen: a client that shuts down its side can still read our reply.
    socket.on("close", () => {
      c.ended = true;
      wake(c.waiters);
    });
    const handle = this.nextHandle++;
    this.conns.set(handle, c);
    return handle;
  }

  private async recv(h: number, maxLen: number, peek: boolean, nonblocking: boolean): Promise<Uint8Array> {
    const c = this.conn(h);
    while (c.buffered === 0 && !c.ended) {
      if (nonblocking) throw new WasiError(Errno.AGAIN, "no data");
      await waitOn(c.waiters, null);
    }
    if (c.buffered === 0) {
      if (c.error !== null) throw new WasiError(c.error, "connection failed");
      return new Uint8Array(0);
    }
    const want = Math.min(maxLen, c.buffered, MAX_RECV);
    const all = Buffer.concat(c.chunks);
    const out = new Uint8Array(all.subarray(0, want));
    if (!peek) {
      const rest = all.subarray(want);
      c.chunks = rest.length > 0 ? [rest] : [];
      c.buffered = rest.length;
      if (c.buffered <= MAX_RECV) c.socket.resume();
    }
    return out;
  }

  private async send(h: number, data: Uint8Array): Promise<number> {
    const c = this.conn(h);
    if (c.error !== null) throw new WasiError(c.error, "connection failed");
    if (c.socket.writableEnded || c.socket.destroyed) throw new WasiError(Errno.PIPE, "socket is shut down for writing");
    await new Promise<void>((resolve, reject) => c.socket.write(data, (err) => (err ? reject(err) : resolve())));
    return data.length;
  }

  private async shutdown(h: number, how: number): Promise<void> {
    const c = this.conn(h);
    if (how < 1 || how > 3) throw new WasiError(Errno.INVAL, "bad sdflags");
    if (how & 2) await new Promise<void>((resolve) => c.socket.end(resolve));
    if (how & 1) {
      c.ended = true;
      c.chunks = [];
      c.buffered = 0;
      wake(c.waiters);
    }
  }

  private async closeHandle(h: number): Promise<void> {
    const c = this.conns.get(h);
    if (c) {
      this.conns.delete(h);
      c.socket.destroySoon();
      return;
    }
    const l = this.listeners.get(h);
    if (l) {
      this.listeners.delete(h);
      for (const s of l.pending) s.destroy();
      await new Promise<void>((resolve) => l.server.close(() => resolve()));
    }
  }

  private readiness(i: PollInterest): PollReady | null {
    const l = this.listeners.get(i.handle);
    if (l) return !i.write && l.pending.length > 0 ? { handle: i.handle, write: false, nbytes: l.pending.length, hangup: false } : null;
    const c = this.conns.get(i.handle);
    if (!c) return { handle: i.handle, write: i.write, nbytes: 0, hangup: false, error: Errno.BADF };
    if (i.write) return { handle: i.handle, write: true, nbytes: c.socket.writableLength === 0 ? 65536 : 0, hangup: c.ended };
    if (c.buffered > 0 || c.ended) return { handle: i.handle, write: false, nbytes: c.buffered, hangup: c.ended && c.buffered === 0 };
    return null;
  }

  private async poll(interests: PollInterest[], timeoutMs: number | null): Promise<PollReady[]> {
    const deadline = timeoutMs === null ? null : Date.now() + timeoutMs;
    for (;;) {
      const ready = interests.map((i) => this.readiness(i)).filter((r): r is PollReady => r !== null);
      if (ready.length > 0) return ready;
      const left = deadline === null ? null : deadline - Date.now();
      if (left !== null && left <= 0) return [];
      const sets = interests.map((i) => this.listeners.get(i.handle)?.waiters ?? this.conns.get(i.handle)?.waiters).filter((s): s is Set<() => void> => !!s);
      await waitOnAny(sets, left);
    }
  }

  /** Closes every socket; pending guest calls get an error. */
  async close(): Promise<void> {
    for (const h of [...this.conns.keys(), ...this.listeners.keys()]) await this.closeHandle(h);
  }
}

function reply(port: MessagePort, flag: Int32Array, r: Reply): void {
  port.postMessage(r);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

function wake(waiters: Set<() => void>): void {
  for (const w of [...waiters]) w();
}

function waitOn(waiters: Set<() => void>, timeoutMs: number | null): Promise<void> {
  return waitOnAny([waiters], timeoutMs);
}

function waitOnAny(sets: Set<() => void>[], timeoutMs: number | null): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      for (const s of sets) s.delete(done);
      if (timer) clearTimeout(timer);
      resolve();
    };
    for (const s of sets) s.add(done);
    if (timeoutMs !== null) timer = setTimeout(done, Math.max(0, timeoutMs));
  });
}

/** Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (127.0.0.1 when the host is empty). */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim());
  if (!m) throw new Error(`invalid listen address ${JSON.stringify(address)}: expected HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid port in ${JSON.stringify(address)}`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
