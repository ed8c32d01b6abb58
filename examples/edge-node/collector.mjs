#!/usr/bin/env node
// A tiny stand-in for the upstream collector an edge node reports to: it
// listens on 127.0.0.1 (a free port), prints its URL, then prints each JSON
// summary POSTed to it on one line and answers "accepted summary N".
//   node examples/edge-node/collector.mjs
import { createServer } from "node:http";

let received = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString();
    let summary;
    try {
      summary = JSON.parse(body);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("expected a JSON summary\n");
      return;
    }
    received++;
    console.log(`collector: summary ${received} from ${summary.node}: ${JSON.stringify(summary.sensors)}`);
    res.writeHead(200, { "content-type": "text/plain" }).end(`accepted summary ${received}\n`);
  });
});
server.listen(0, "127.0.0.1", () => console.log(`collector listening on http://127.0.0.1:${server.address().port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
