/**
 * A constant-rate HTTP/1.1 load generator (the wrk2 idea, which Debian does
 * not package): requests are *scheduled* at a fixed rate, and each latency is
 * measured from the time the request was scheduled to go out, not from when
 * a connection was free to send it. A server that stalls therefore shows its
 * stall in every request that should have been sent meanwhile (no
 * "coordinated omission", which makes closed-loop tools like wrk report a
 * stalled server's p99 as if it never stalled).
 *
 * Run as a child process (one core of its own, see node-gateway.bench.ts):
 *   node dist/bench/rate-load.js URL HOST RATE SECONDS CONNECTIONS
 * prints one JSON line: { sent, done, errors, rps, p50, p99, p999, max, lagP99 }
 * (latencies in ms; lagP99 = how late this generator itself sent, p99, ms).
 *
 * It keeps CONNECTIONS keep-alive sockets, one request in flight on each (no
 * pipelining); a scheduled request waits for a free socket, and that wait
 * counts in its latency. It spins the event loop with setImmediate so that
 * requests leave within a few µs of their time (lagP99 says how well that went).
 */
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

export interface RateResult {
  sent: number;
  done: number;
  errors: number;
  /** Responses per second over the run. */
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** How late this generator got to requests (sent, or queued for a busy socket), p99, ms: its own noise floor. */
  lagP99: number;
  /** p50/p99 measured from when each request was actually written (what a closed-loop tool reports), ms. */
  sentP50: number;
  sentP99: number;
}

interface Conn {
  sock: Socket;
  busy: boolean;
  buf: Buffer;
  /** Scheduled time of the request in flight (ms, performance.now()). */
  scheduled: number;
  /** When it was written. */
  sent: number;
}

export async function constantRate(url: string, host: string, rate: number, seconds: number, connections: number): Promise<RateResult> {
  const u = new URL(url);
  const request = Buffer.from(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: uniwasm-rate-load\r\n\r\n`, "latin1");
  const latencies: number[] = [];
  const fromSent: number[] = [];
  const lags: number[] = [];
  let errors = 0;
  let done = 0;
  const waiting: number[] = []; // scheduled times of requests waiting for a free connection
  const conns: Conn[] = [];
  const free: Conn[] = [];

  const send = (c: Conn, scheduled: number): void => {
    c.busy = true;
    c.scheduled = scheduled;
    c.sent = performance.now();
    c.sock.write(request);
  };
  const finished = (c: Conn, ok: boolean): void => {
    const now = performance.now();
    if (ok) {
      latencies.push(now - c.scheduled);
      fromSent.push(now - c.sent);
    }
    else errors++;
    done++;
    c.busy = false;
    const next = waiting.shift();
    if (next !== undefined) send(c, next);
    else free.push(c);
  };

  await Promise.all(
    Array.from({ length: connections }, () =>
      new Promise<void>((resolve, reject) => {
        const sock = connect(Number(u.port || 80), u.hostname, () => resolve());
        sock.setNoDelay(true);
        const c: Conn = { sock, busy: false, buf: Buffer.alloc(0), scheduled: 0, sent: 0 };
        sock.on("data", (chunk: Buffer) => {
          c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
          // One response at a time per connection; parse as many as are complete (there is at most one).
          for (;;) {
            const n = responseLength(c.buf);
            if (n < 0) return;
            const status = c.buf.toString("latin1", 9, 12);
            c.buf = c.buf.subarray(n);
            finished(c, status[0] === "2");
          }
        });
        sock.on("error", (err) => {
          if (!c.busy) return reject(err);
          errors++;
        });
        conns.push(c);
        free.push(c);
      }),
    ),
  );

  const interval = 1000 / rate;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      // Every request whose time has come goes out now (or waits for a socket, its clock running).
      for (let at = t0 + i * interval; at <= now && at < end; at = t0 + ++i * interval) {
        lags.push(now - at);
        const c = free.pop();
        if (c) send(c, at);
        else waiting.push(at);
      }
      if (now < end) setImmediate(tick);
      else resolve();
    };
    tick();
  });
  // Let what is in flight finish (a bounded grace period), then stop.
  const grace = performance.now() + 2000;
  while ((waiting.length > 0 || conns.some((c) => c.busy)) && performance.now() < grace) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - t0) / 1000;
  errors += waiting.length + conns.filter((c) => c.busy).length;
  for (const c of conns) c.sock.destroy();
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  fromSent.sort((a, b) => a - b);
  const pct = (s: number[], p: number) => (s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!);
  return { sent: i, done, errors, rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99), p999: pct(latencies, 99.9), max: latencies[latencies.length - 1] ?? Number.NaN, lagP99: pct(lags, 99), sentP50: pct(fromSent, 50), sentP99: pct(fromSent, 99) };
}

/** Bytes of the first complete response in `b`, or -1 when it is not complete yet. */
function responseLength(b: Buffer): number {
  const headEnd = b.indexOf("\r\n\r\n", 0, "latin1");
  if (headEnd < 0) return -1;
  const head = b.toString("latin1", 0, headEnd).toLowerCase();
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    const total = headEnd + 4 + Number(cl[1]);
    return b.length >= total ? total : -1;
  }
  if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
    const last = b.indexOf("\r\n0\r\n\r\n", headEnd + 2, "latin1");
    return last < 0 ? -1 : last + 7;
  }
  return headEnd + 4; // no body (204/304) in this benchmark's servers
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, host, rate, seconds, connections] = process.argv.slice(2);
  constantRate(url!, host!, Number(rate), Number(seconds), Number(connections ?? 32)).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`rate-load: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
