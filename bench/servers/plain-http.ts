/**
 * Plain Node `http` hello, the benchmark's ceiling for a Node server:
 *   node dist/bench/servers/plain-http.js [WORKERS]
 * With WORKERS > 1, that many cluster workers share the port (Node 20's
 * cluster module, round-robin in the primary). Prints { gateway, pid } and
 * stops when stdin closes.
 */
import cluster from "node:cluster";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

function serve(port: number): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("hello\n");
  });
  return new Promise((r) => server.listen(port, "127.0.0.1", () => r((server.address() as { port: number }).port)));
}

async function main(): Promise<void> {
  const workers = Number(process.argv[2] ?? 1);
  if (cluster.isWorker) {
    // listen(0) in cluster workers: the primary binds one port for all of them.
    await serve(0);
    return;
  }
  let port: number;
  if (workers > 1) {
    // The primary only hands out connections; the workers answer.
    for (let i = 0; i < workers; i++) cluster.fork();
    port = await new Promise<number>((r) => {
      let up = 0;
      cluster.on("listening", (_w, address) => ++up === workers && r(address.port));
    });
  } else port = await serve(0);
  process.stdout.write(JSON.stringify({ gateway: `http://127.0.0.1:${port}`, pid: process.pid }) + "\n");
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) void main();
