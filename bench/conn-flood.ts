/**
 * The connection flood of issue 8, as a script: a flooder process opens N
 * connections to a node's gateway, from several loopback addresses, each
 * sending a partial request head and nothing more; meanwhile a client keeps
 * making ordinary requests. Prints how many flood connections the node held,
 * how many it shed, how many its headers deadline cut, the node's open file
 * descriptors, and the ordinary client's success rate and latency.
 *
 *   npm run build && node dist/bench/conn-flood.js [--connections 19980] [--addresses 64] [--seconds 8]
 *
 * With the defaults (gateway cap = half the open-file limit, 256 per address,
 * headers within 5 s) the ordinary client keeps being served; before the caps
 * the same flood took every descriptor and the gateway and API stopped
 * answering for ~30 s. Not a unit test: it needs thousands of descriptors.
 */
import { fork } from "node:child_process";
import { connect, type Socket } from "node:net";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startNode } from "../src/server/index.js";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

if (args[0] === "--flood") {
  // The flooder keeps N connections open, spread over `addresses` source addresses, each with a
  // partial head; one the node closes is opened again (as a slowloris client does).
  const [, url, n, addresses] = args;
  const u = new URL(url!);
  let opened = 0;
  let closedByNode = 0;
  let live = 0;
  let stopping = false;
  const open = (i: number) => {
    const a = i % Number(addresses);
    const s = connect({ host: u.hostname, port: Number(u.port), localAddress: `127.0.${1 + Math.floor(a / 250)}.${1 + (a % 250)}` });
    s.on("connect", () => {
      opened++;
      live++;
      s.write("GET / HTTP/1.1\r\nHost: flood.example\r\nX-Slow: ");
    });
    s.on("error", () => undefined);
    s.on("close", (hadError) => {
      if (s.bytesWritten > 0) live--;
      closedByNode++;
      void hadError;
      if (!stopping) setTimeout(() => open(i), 50);
    });
  };
  setInterval(() => process.send!({ opened, closedByNode, live }), 250);
  process.on("message", () => {
    stopping = true;
    process.exit(0);
  });
  for (let i = 0; i < Number(n); i++) {
    open(i);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 5)); // let the accept queue drain
  }
} else {
  const connections = opt("connections", 19_980);
  const addresses = opt("addresses", 64);
  const seconds = opt("seconds", 8);
  const node = await startNode({ dataDir: mkdtempSync(join(tmpdir(), "uniwasm-flood-")), apiPort: 0, gatewayPort: 0, executors: 1, logger: false });
  const admin = node.bootstrap!.secret;
  const api = async (method: string, path: string, body?: unknown, type = "application/json") => {
    const r = await fetch(node.apiUrl + path, { method, headers: { authorization: `Bearer ${admin}`, "content-type": type }, body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : (body as Uint8Array) });
    return r.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  await api("POST", "/v1/tenants", { name: "acme" });
  const up = await api("POST", "/v1/tenants/acme/images?name=hello", readFileSync(join(fileURLToPath(new URL("../../test/fixtures/wagi/hello.wasm", import.meta.url)))), "application/wasm");
  await api("PUT", "/v1/tenants/acme/apps/hello", { image: up.digest });

  const gw = new URL(node.gatewayUrl);
  const get = () =>
    new Promise<number>((resolve) => {
      const t0 = performance.now();
      const req = request({ host: gw.hostname, port: gw.port, path: "/", headers: { host: "hello.acme.localhost" }, agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200 ? performance.now() - t0 : -1));
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(-1));
      req.end();
    });

  const flooder = fork(fileURLToPath(import.meta.url), ["--flood", node.gatewayUrl, String(connections), String(addresses)], { stdio: "inherit" });
  let flood = { opened: 0, closedByNode: 0, live: 0 };
  flooder.on("message", (m) => (flood = m as typeof flood));
  // Measure once the flood is at full strength.
  for (let i = 0; i < 200 && flood.opened < Math.min(connections, 1000); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000));
  const latencies: number[] = [];
  let failures = 0;
  let maxFds = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const ms = await get();
    if (ms < 0) failures++;
    else latencies.push(ms);
    maxFds = Math.max(maxFds, readdirSync("/proc/self/fd").length);
    await new Promise((r) => setTimeout(r, 20));
  }
  const info = await api("GET", "/v1/node");
  flooder.send("stop");
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1) : "-");
  const g = info.connections.gateway;
  process.stdout.write(
    [
      `flood: ${connections} connections from ${addresses} addresses, partial headers; ordinary client for ${seconds} s`,
      `gateway caps: ${g.limits.maxConnections} total, ${g.limits.maxConnectionsPerIp} per address, headers within ${g.limits.headersTimeoutMs} ms`,
      `flood: ${flood.opened} connections opened (reopened when closed), ${flood.closedByNode} closed by the node: shed at accept ${g.shed.total} (total cap) + ${g.shed.per_ip} (per-address cap), the rest by the headers deadline`,
      `node: ${g.open} gateway connections open at the end, at most ${maxFds} file descriptors in this process (node + client)`,
      `ordinary client: ${latencies.length} ok, ${failures} failed; latency p50 ${pct(50)} ms, p99 ${pct(99)} ms`,
      "",
    ].join("\n"),
  );
  await node.close();
  process.exit(0);
}
