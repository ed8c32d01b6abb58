/**
 * `bash examples/edge-node/demo.sh` runs from start to end on a throw-away
 * node with a 256 MiB budget and one executor: the three apps answer
 * correctly, the summary reaches the collector, and during a burst of media
 * requests the inference and aggregation apps still answer within their
 * deadlines (the demo measures each request with curl; this test reads its
 * table and holds it to the deadlines).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { have, runDemo } from "./helpers.js";

const missing = ["bash", "curl"].filter((c) => !have(c));

test("the edge-node demo runs media, inference and aggregation on 256 MiB and one executor, and a media burst starves neither of the others", { skip: missing.length ? `needs ${missing.join(" and ")}` : false }, async () => {
  const r = await runDemo("edge-node");
  assert.equal(r.code, 0, r.err + r.out);
  // Priorities and the budget, as the resource manager shows them.
  assert.match(r.out, /^ {2}vision +4 +32$/m, "tenants show their weights (priorities) and memory quotas");
  assert.match(r.out, /executors 1; memory reserved 8 MiB of the 256 MiB budget/, "the warm classifier holds its 8 MiB of the node's 256");
  assert.match(r.out, /^ {2}vision +live instances 1, memory reserved 8 MiB/m);
  assert.match(r.out, /quota_exceeded: limits\.maxMemoryBytes 192 MiB is above tenant cameras's memory quota \(128 MiB\)/);
  // Media: a 640x480 photo resized to 64x48 (aspect kept), an edge map as a grey image of the same size.
  assert.match(r.out, /^PPM \(colour\) 64x48, 9229 bytes$/m);
  assert.match(r.out, /^PGM \(grey\) 640x480, 307215 bytes$/m);
  // Inference: every bundled held-out sample right, and a posted image classified.
  assert.match(r.out, /^20\/20 bundled samples classified correctly$/m);
  assert.match(r.out, /^sample 14: label 7, classified 7 /m);
  assert.match(r.out, /^digit 3 \(\d+\.\d%\)$/m);
  // Aggregation: statistics kept in KV, a summary the collector accepted.
  assert.match(r.out, /^recorded 36 readings$/m);
  assert.match(r.out, /^temp-1 +count +12 +min +20 +max +24\.9 +mean +22\.32 /m);
  assert.match(r.out, /^summary of 3 sensors sent to the collector: 200 accepted summary 1$/m);
  assert.match(r.out, /^collector: summary 1 from edge-17: \{"humidity":\{"count":12,/m);
  // The burst: every request answered, the other two within their deadlines (2 s).
  const row = (app: string) => {
    const m = new RegExp(`^${app} +(\\d+) requests, +(\\d+) answered 200; slowest +(\\d+) ms, median +(\\d+) ms \\(deadline (\\d+) ms\\)(.*)$`, "m").exec(r.out);
    assert.ok(m, `the demo prints the burst's ${app} row`);
    const [sent, ok, slowest, , deadline] = m.slice(1, 6).map(Number) as [number, number, number, number, number];
    return { sent, ok, slowest, deadline, shed: m[6]! };
  };
  const media = row("media");
  // On a loaded machine the burst's tail may wait past the scheduler's queue timeout and be shed
  // (503 node_overloaded): the node sheds the bursting app's excess, not the others' requests.
  assert.ok(media.ok >= media.sent / 2, `most of the burst is served: ${media.ok}/${media.sent}${media.shed}`);
  assert.match(media.shed, /^(, \d+ answered 503)?$/, "what is not served is shed with 503");
  for (const app of ["digits", "telemetry"]) {
    const x = row(app);
    assert.equal(x.sent, 8);
    assert.equal(x.ok, 8, `${app}: every request during the burst answered 200`);
    assert.ok(x.slowest < x.deadline, `${app}: slowest ${x.slowest} ms during the burst, deadline ${x.deadline} ms`);
  }
  const data = /data in (\S+)\/node\)/.exec(r.out)?.[1];
  assert.ok(data, "the demo says where its node kept its data");
  assert.equal(existsSync(data), false, "the demo removes its temp directory");
});
