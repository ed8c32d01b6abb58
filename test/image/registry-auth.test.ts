/**
 * Bearer token auth against the real registry: docker-registry in token mode
 * trusts a self-signed certificate (made with openssl); a token server in the
 * test checks Basic credentials and issues ES256 JWTs signed by that key,
 * with the certificate in `x5c`, as Docker's token spec describes.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createPrivateKey, randomBytes, sign } from "node:crypto";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { pushImage, pullImage } from "../../src/image/transfer.js";
import { ImageError } from "../../src/image/errors.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";
import { REGISTRY_SKIP, startRegistry, type RegistryServer } from "./registry-server.js";

const SKIP = REGISTRY_SKIP || (existsSync("/usr/bin/openssl") ? false : "openssl not installed (apt-get install openssl)");
const SERVICE = "uniwasm-test-registry";
const ISSUER = "uniwasm-test-issuer";
const USER = { username: "ci", password: "s3cret" };

let registry: RegistryServer | undefined;
let tokenServer: Server | undefined;
const issued: string[] = [];

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

before(async () => {
  if (SKIP) return;
  let certDer = "";
  let key: ReturnType<typeof createPrivateKey> | undefined;
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    const auth = req.headers.authorization ?? "";
    if (auth !== `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString("base64")}`) {
      res.writeHead(401).end();
      return;
    }
    const access = url.searchParams.getAll("scope").flatMap((sc) => {
      const [type, name, actions] = sc.split(":");
      return [{ type, name, actions: actions!.split(",") }];
    });
    issued.push(url.searchParams.getAll("scope").join(" "));
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "ES256", typ: "JWT", x5c: [certDer] };
    const claims = { iss: ISSUER, sub: USER.username, aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString("hex"), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign("sha256", Buffer.from(input), { key: key!, dsaEncoding: "ieee-p1363" });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `${input}.${b64url(sig)}` }));
  });
  await new Promise<void>((r) => tokenServer!.listen(0, "127.0.0.1", r));
  const tokenPort = (tokenServer.address() as { port: number }).port;
  registry = await startRegistry(async (dir) => {
    const made = spawnSync("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", `/CN=${ISSUER}`], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    key = createPrivateKey(await readFile(join(dir, "key.pem")));
    certDer = (await readFile(join(dir, "cert.pem"), "utf8")).replace(/-----[A-Z ]+-----|\s/g, "");
    return ["auth:", "  token:", `    realm: http://127.0.0.1:${tokenPort}/token`, `    service: ${SERVICE}`, `    issuer: ${ISSUER}`, `    rootcertbundle: ${join(dir, "cert.pem")}`];
  });
});

after(async () => {
  await registry?.stop();
  await new Promise((r) => (tokenServer ? tokenServer.close(r) : r(undefined)));
});

test("push and pull answer the registry's Bearer challenge with a token from its realm", { skip: SKIP }, async () => {
  const [dir, homeA, homeB] = [await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const ref = `${registry!.address}/auth/greet:1.0.0`;
    const pushed = await pushImage(a, "greet:1.0.0", ref, { credentials: USER });
    assert.equal(pushed.digest, digest);
    // The push got a token for both actions on the repository (the registry's challenge lists them in either order).
    const actions = (scope: string): string => (scope.startsWith("repository:auth/greet:") ? scope.split(":")[2]!.split(",").sort().join(",") : "");
    assert.ok(issued.some((scope) => actions(scope) === "pull,push"), issued.join(" | "));
    const pulled = await pullImage(new ImageStore(homeB), ref, { credentials: USER });
    assert.equal(pulled.digest, digest);
  } finally {
    await cleanup(dir, homeA, homeB);
  }
});

test("without credentials the token server refuses and the error says so", { skip: SKIP }, async () => {
  const home = await tempDir("home");
  try {
    await assert.rejects(pullImage(new ImageStore(home), `${registry!.address}/auth/greet:1.0.0`), (e: ImageError) => e.code === "registry_error" && /token from http:\/\/127\.0\.0\.1:\d+\/token: HTTP 401/.test(e.message));
    await assert.rejects(
      pullImage(new ImageStore(home), `${registry!.address}/auth/greet:1.0.0`, { credentials: { username: "ci", password: "wrong" } }),
      (e: ImageError) => e.code === "registry_error" && /HTTP 401/.test(e.message),
    );
  } finally {
    await cleanup(home);
  }
});
