import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;

before(async () => {
  node = await testNode({ executors: 1 });
  const t = await tenant(node, "proto");
  assert.equal((await deploy(node, t, "cgi", "wagi/handler.wasm")).status, 201);
  assert.equal((await deploy(node, t, "hdr", "wagi/headers.wasm")).status, 201);
  assert.equal((await deploy(node, t, "rx", "reactor/hello.wasm", { abi: "reactor" })).status, 201);
});
after(async () => {
  await node.close();
});

/** Sends raw bytes on one connection (the last request says Connection: close) and returns everything the server sent until it closed. */
function raw(text: string): Promise<string> {
  const url = new URL(node.gatewayUrl);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    s.on("data", (c) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    s.write(text); // no half-close: the server closes after the last response
  });
}

const errorCode = (text: string) => JSON.parse(text).error.code as string;

test("a query parameter or a path that decodes to a NUL byte is a 400 bad_request naming it, never a host fault", async () => {
  const q = await gw(node, "proto", "cgi", "/echo?a%00b");
  assert.equal(q.status, 400, q.text);
  assert.equal(errorCode(q.text), "bad_request");
  assert.match(JSON.parse(q.text).error.message, /query parameter "a%00b" decodes to a NUL byte/);
  const p = await gw(node, "proto", "cgi", "/ec%00ho");
  assert.equal(p.status, 400, p.text);
  assert.match(JSON.parse(p.text).error.message, /the path decodes to a NUL byte/);
  // A reactor gets no argv: the raw query is just its QUERY_STRING.
  assert.equal((await gw(node, "proto", "rx", "/?a%00b")).status, 200);
  assert.equal((await gw(node, "proto", "cgi", "/hello")).status, 200, "the node keeps serving");
});

test("a guest's interim Status (101, 100) is a 502 guest_error, never sent on the connection", async () => {
  for (const status of ["101", "100"]) {
    const r = await gw(node, "proto", "hdr", `/?${status}`);
    assert.equal(r.status, 502, `${status}: ${r.text}`);
    assert.match(JSON.parse(r.text).error.message, new RegExp(`invalid Status header "${status}" \\(a final status from 200 to 599\\)`));
  }
});

test("a guest's 204 and 304 go out with no body and no Content-Length, and the kept-alive connection stays in sync", async () => {
  const host = "hdr.proto.localhost";
  const out = await raw(`GET /?204 HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /?304 HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /?200 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const responses = out.split(/(?=HTTP\/1\.1 )/);
  assert.equal(responses.length, 3, out);
  for (const [i, status] of ["204", "304"].entries()) {
    assert.ok(responses[i]!.startsWith(`HTTP/1.1 ${status} `), responses[i]);
    assert.doesNotMatch(responses[i]!, /content-length|transfer-encoding/i);
    assert.ok(responses[i]!.endsWith("\r\n\r\n"), `nothing after the ${status}'s headers: ${JSON.stringify(responses[i])}`);
  }
  assert.match(responses[2]!, /^HTTP\/1\.1 200 [^]*\r\n\r\na body the guest wrote\n$/);
});

test("a guest's X-Request-Id is dropped: a response carries the node's one request id", async () => {
  const r = await gw(node, "proto", "hdr", "/");
  assert.equal(r.status, 200);
  assert.equal(r.headers["x-guest"], "yes");
  assert.match(String(r.headers["x-request-id"]), /^[0-9a-f]{16}$/, "one id, the node's");
});

test("duplicate Host headers are a 400 bad_request", async () => {
  const out = await raw("GET /hello HTTP/1.1\r\nHost: cgi.proto.localhost\r\nHost: other.proto.localhost\r\nConnection: close\r\n\r\n");
  assert.match(out, /^HTTP\/1\.1 400 /);
  assert.equal(errorCode(out.slice(out.indexOf("\r\n\r\n") + 4)), "bad_request");
  assert.match(out, /more than one Host header/);
});

test("an absolute-form request target routes by its authority and passes only its path as PATH_INFO", async () => {
  const out = await raw("GET http://cgi.proto.localhost:80/echo?x=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n");
  assert.match(out, /^HTTP\/1\.1 200 /, out);
  assert.match(out, /^path=\/echo$/m);
  assert.match(out, /^query=x=1$/m);
  assert.match(out, /^host=cgi\.proto\.localhost$/m);
  const bad = await raw("GET ftp://cgi.proto.localhost/echo HTTP/1.1\r\nHost: cgi.proto.localhost\r\nConnection: close\r\n\r\n");
  assert.match(bad, /^HTTP\/1\.1 400 /, bad);
});
