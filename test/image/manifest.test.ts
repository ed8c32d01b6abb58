import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifest, MANIFEST_BOUNDS } from "../../src/image/manifest.js";
import { parseSize, parseDuration } from "../../src/units.js";
import { ManifestError } from "../../src/image/errors.js";

const MINIMAL = `manifest_version = 1
[application]
name = "hello"
[module]
source = "hello.wasm"
`;

function problems(text: string): { line?: number; field: string; message: string }[] {
  try {
    parseManifest(text, "uniwasm.toml");
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`);
    return err.problems.map((p) => ({ line: p.line, field: p.field, message: p.message }));
  }
  assert.fail("manifest was accepted");
}

test("a minimal manifest parses with deny-by-default capabilities", () => {
  const m = parseManifest(MINIMAL);
  assert.equal(m.name, "hello");
  assert.equal(m.version, "0.0.0");
  assert.equal(m.entry, "command");
  assert.deepEqual(m.exports, []);
  assert.equal(m.capabilities.clocks, false);
  assert.equal(m.capabilities.random, false);
  assert.deepEqual(m.capabilities.dirs, []);
  assert.deepEqual(m.capabilities.env, {});
  assert.deepEqual(m.limits, {});
});

test("a full manifest parses every section", () => {
  const m = parseManifest(`manifest_version = 1
[application]
name = "web"
version = "1.2.0"
description = "A web thing"
authors = ["Ada"]
[module]
source = "build/web.wasm"
entry = "reactor"
exports = ["handle", "health"]
[capabilities]
args = ["--loud"]
environment = { GREETING = "hi", MODE = "prod" }
clocks = true
random = true
allowed_outbound_hosts = ["https://api.example.com", "https://*.example.org:443"]
listen = ["127.0.0.1:8080"]
extensions = ["uniwasm:kv"]
[[capabilities.dirs]]
guest = "/static/"
files = "./static"
[[capabilities.dirs]]
guest = "/data"
host = "/var/lib/web"
mode = "rw"
[limits]
memory = "64MiB"
fuel = 1_000_000
timeout = "5s"
stdout = "1MiB"
stderr = 4096
open_files = 64
tier = "process"
[[trigger.http]]
route = "/api/..."
host = "web.example.com"
abi = "reactor"
handler = "handle"
`);
  assert.equal(m.entry, "reactor");
  assert.deepEqual(m.exports, ["handle", "health"]);
  assert.deepEqual(m.capabilities.env, { GREETING: "hi", MODE: "prod" });
  assert.deepEqual(m.capabilities.dirs, [
    { guest: "/static", mode: "ro", files: "static" },
    { guest: "/data", mode: "rw", host: "/var/lib/web" },
  ]);
  assert.deepEqual(m.limits, { maxMemoryBytes: 64 * 1024 * 1024, fuel: 1_000_000, timeoutMs: 5000, stdoutBytes: 1024 * 1024, stderrBytes: 4096, openFiles: 64, tier: "process" });
  assert.deepEqual(m.triggers.http, [{ route: "/api", host: "web.example.com", abi: "reactor", handler: "handle" }]);
});

test("an unknown field is refused with its line and the allowed fields", () => {
  const p = problems(`${MINIMAL}[limits]
memory = "1MiB"
memroy_max = 5
`);
  assert.equal(p.length, 1);
  assert.equal(p[0]!.line, 8);
  assert.equal(p[0]!.field, "limits.memroy_max");
  assert.match(p[0]!.message, /unknown field; allowed here: memory, fuel, timeout, stdout, stderr, open_files, tier/);
});

test("a TOML syntax error names the line and column", () => {
  const p = problems(`manifest_version = 1\n[application]\nname = = "x"\n`);
  assert.equal(p[0]!.line, 3);
  assert.equal(p[0]!.field, "");
  assert.match(p[0]!.message, /TOML syntax error/);
});

test("the error message reads file:line: field: what is allowed", () => {
  try {
    parseManifest(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\nfiles = "a"\nmode = "rwx"\n`, "app/uniwasm.toml");
    assert.fail("accepted");
  } catch (err) {
    assert.ok(err instanceof ManifestError);
    assert.equal(err.message, `app/uniwasm.toml:9: capabilities.dirs[0].mode: "rwx" is not allowed; expected "ro" or "rw"`);
    assert.equal(err.code, "manifest_invalid");
  }
});

test("the array-of-tables index and line are right for a later entry", () => {
  const p = problems(`${MINIMAL}
[[capabilities.dirs]]
guest = "/a"
files = "a"

[[capabilities.dirs]]
guest = "relative"
host = "/x"
`);
  assert.deepEqual(p.map((x) => [x.line, x.field]), [[12, "capabilities.dirs[1].guest"]]);
});

test("manifest_version is required and only 1 is accepted", () => {
  assert.match(problems(`[application]\nname = "a"\n[module]\nsource = "a.wasm"\n`)[0]!.message, /missing; add `manifest_version = 1`/);
  const p = problems(MINIMAL.replace("manifest_version = 1", "manifest_version = 2"));
  assert.equal(p[0]!.line, 1);
  assert.match(p[0]!.message, /version 2 is not supported; this uniwasm reads manifest_version = 1/);
});

test("all problems are reported at once", () => {
  const p = problems(`manifest_version = 1
[application]
name = "Bad Name"
[module]
source = "../escape.wasm"
entry = "daemon"
`);
  assert.deepEqual(p.map((x) => x.field), ["application.name", "module.source", "module.entry"]);
  assert.deepEqual(p.map((x) => x.line), [3, 5, 6]);
});

test("a dir must set exactly one of files or host, and host must be absolute", () => {
  assert.match(problems(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\n`)[0]!.message, /exactly one of files .* or host/);
  assert.match(problems(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\nfiles = "a"\nhost = "/b"\n`)[0]!.message, /exactly one/);
  assert.match(problems(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\nhost = "b"\n`)[0]!.message, /must be an absolute host path/);
});

test("guest dirs may not repeat or nest", () => {
  const p = problems(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\nhost = "/x"\n[[capabilities.dirs]]\nguest = "/a/b"\nhost = "/y"\n`);
  assert.match(p[0]!.message, /overlaps \/a/);
  assert.equal(p[0]!.field, "capabilities.dirs[1].guest");
});

test("files paths may not leave the build directory", () => {
  const p = problems(`${MINIMAL}[[capabilities.dirs]]\nguest = "/a"\nfiles = "x/../../etc"\n`);
  assert.match(p[0]!.message, /must not contain '\.\.'/);
});

test("lists over their bound are refused with the bound named", () => {
  const args = Array.from({ length: MANIFEST_BOUNDS.args + 1 }, (_, i) => `"a${i}"`).join(", ");
  const p = problems(`${MINIMAL}[capabilities]\nargs = [${args}]\n`);
  assert.equal(p[0]!.field, "capabilities.args");
  assert.match(p[0]!.message, /has 257 entries; at most 256 allowed/);
});

test("a manifest file over 64 KiB is refused before parsing", () => {
  const p = problems(MINIMAL + "#".repeat(MANIFEST_BOUNDS.fileBytes));
  assert.match(p[0]!.message, /at most 65536 bytes/);
});

test("limits must be in range and memory a whole number of pages", () => {
  assert.match(problems(`${MINIMAL}[limits]\nmemory = "100KiB"\n`)[0]!.message, /not a whole number of 64 KiB wasm pages/);
  assert.match(problems(`${MINIMAL}[limits]\nmemory = "8GiB"\n`)[0]!.message, /out of range/);
  assert.match(problems(`${MINIMAL}[limits]\ntimeout = "5 days"\n`)[0]!.message, /not a duration/);
  assert.match(problems(`${MINIMAL}[limits]\nfuel = 0\n`)[0]!.message, /out of range; allowed 1/);
  assert.match(problems(`${MINIMAL}[limits]\nopen_files = 2\n`)[0]!.message, /stdio \+ 0 dirs \+ 0 listeners need 3/);
  assert.match(problems(`${MINIMAL}[limits]\nstdout = "lots"\n`)[0]!.message, /is not a size/);
  assert.match(problems(`${MINIMAL}[limits]\ntier = "vm"\n`)[0]!.message, /expected one of "isolate", "process", "gvisor", got the string "vm"/);
});

test("environment variable names and types are checked", () => {
  const p = problems(`${MINIMAL}[capabilities]\nenvironment = { "1BAD" = "x", OK = 5 }\n`);
  assert.deepEqual(p.map((x) => x.field), ["capabilities.environment.1BAD", "capabilities.environment.OK"]);
  assert.equal(p[0]!.line, 7);
});

test("a command may not list exports; a reactor must", () => {
  assert.match(problems(`${MINIMAL}exports = ["f"]\n`)[0]!.message, /only a reactor lists exports/);
  assert.match(problems(MINIMAL + `entry = "reactor"\n`)[0]!.message, /a reactor must list at least one exported function/);
});

test("triggers: wagi needs a command, reactor needs a listed handler, routes are prefixes", () => {
  assert.match(problems(`${MINIMAL}[[trigger.http]]\nroute = "/a"\nabi = "reactor"\n`)[0]!.message, /reactor ABI needs module.entry = "reactor"/);
  const r = `manifest_version = 1\n[application]\nname = "r"\n[module]\nsource = "r.wasm"\nentry = "reactor"\nexports = ["handle"]\n`;
  assert.match(problems(`${r}[[trigger.http]]\nroute = "/a"\nhandler = "nope"\n`)[0]!.message, /"nope" is not in module.exports \(handle\)/);
  assert.match(problems(`${r}[[trigger.http]]\nroute = "/a"\nabi = "wagi"\n`)[0]!.message, /this module is a reactor/);
  assert.match(problems(`${MINIMAL}[[trigger.http]]\nroute = "api"\n`)[0]!.message, /expected a path prefix/);
  assert.match(problems(`${MINIMAL}[[trigger.http]]\nroute = "/a"\n[[trigger.http]]\nroute = "/a/"\n`)[0]!.message, /declared twice/);
});

test("outbound hosts and listen addresses use Spin's and wasmtime's forms", () => {
  assert.match(problems(`${MINIMAL}[capabilities]\nallowed_outbound_hosts = ["example.com"]\n`)[0]!.message, /expected scheme:\/\/host\[:port\]/);
  assert.match(problems(`${MINIMAL}[capabilities]\nlisten = ["8080"]\n`)[0]!.message, /expected IPV4:PORT/);
  assert.match(problems(`${MINIMAL}[capabilities]\nextensions = ["wasi_snapshot_preview1"]\n`)[0]!.message, /WASI is granted by the other capability fields/);
});

test("wrong value types are named with what was given", () => {
  const p = problems(`${MINIMAL}[capabilities]\nclocks = "yes"\n`);
  assert.equal(p[0]!.message, `expected true or false, got the string "yes"`);
  assert.match(problems(`manifest_version = 1\napplication = 5\n[module]\nsource = "a.wasm"\n`)[0]!.message, /expected a table, got the integer 5/);
});

test("sizes and durations accept plain numbers and binary units", () => {
  assert.equal(parseSize("64MiB"), 64 * 1024 * 1024);
  assert.equal(parseSize("1_024"), 1024);
  assert.equal(parseSize("2GiB"), 2 * 1024 ** 3);
  assert.throws(() => parseSize("3 parsecs"), /not a size/);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("2m"), 120_000);
  assert.throws(() => parseDuration("1d"), /not a duration/);
});

test("a manifest's sizes and durations use the CLI's grammar: binary units, whatever their spelling; 1h", () => {
  for (const [text, bytes] of [["16MB", 16 << 20], ["16M", 16 << 20], ["16MiB", 16 << 20], ["64K", 64 << 10], ["1G", 1 << 30]] as const) {
    assert.equal(parseSize(text), bytes, text);
    const m = parseManifest(`${MINIMAL}[limits]\nmemory = "${text}"\ntimeout = "1h"\n`);
    assert.equal(m.limits.maxMemoryBytes, bytes, text);
    assert.equal(m.limits.timeoutMs, 3_600_000);
  }
});

test("line numbers stay right after multi-line arrays and strings", () => {
  const p = problems(`manifest_version = 1
[application]
name = "hello"
description = """
bogus = "not a key, inside a string"
"""
[module]
source = "hello.wasm"
[capabilities]
args = [
  "a",
  "b = c",
]
bogus = 1
`);
  assert.deepEqual(p.map((x) => [x.line, x.field]), [[14, "capabilities.bogus"]]);
});

test("dotted keys and quoted keys are located", () => {
  const p = problems(`manifest_version = 1
application.name = "hello"
module.source = "hello.wasm"
limits."open_files" = 1
`);
  assert.deepEqual(p.map((x) => [x.line, x.field]), [[4, "limits.open_files"]]);
});
