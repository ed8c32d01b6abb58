/**
 * A real nats-server for the cluster tests: JetStream in a temp dir, on
 * 127.0.0.1 with a port the server picks, with a password user and an nkey
 * user (a node never joins without credentials). Tests skip with the reason
 * when nats-server is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createUser } from "@nats-io/nkeys";

function findNatsServer(): string | undefined {
  for (const p of ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) {
    if (spawnSync(p, ["--version"]).status === 0) return p;
  }
  const r = spawnSync("nats-server", ["--version"]);
  return r.status === 0 ? "nats-server" : undefined;
}

export const NATS_SERVER = findNatsServer();
/** `skip` option for node:test: false when nats-server is here, else the reason. */
export const SKIP_NO_NATS: string | false = NATS_SERVER ? false : "nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)";
const HAVE_OPENSSL = spawnSync("openssl", ["version"]).status === 0;
/** For the TLS tests: nats-server and openssl (to make a CA and a server certificate). */
export const SKIP_NO_NATS_TLS: string | false = SKIP_NO_NATS || (HAVE_OPENSSL ? false : "openssl is not installed (Debian: apt-get install openssl)");

/**
 * A throwaway CA and a certificate for 127.0.0.1 signed by it, in `dir`. The
 * name localhost too: the NATS client checks a server dialled by IP address
 * under that name.
 */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const run = (...args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=uniwasm test CA");
  run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext");
  return { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
}

export interface NatsHandle {
  url: string;
  port: number;
  user: string;
  password: string;
  nkeySeed: string;
  dir: string;
  /** With `tls: true`: the CA that signed the server's certificate. */
  caFile?: string;
  /** The running server's process id. */
  readonly pid: number;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same JetStream directory. */
  restart(): Promise<void>;
}

export async function startNats(opts: { tls?: boolean } = {}): Promise<NatsHandle> {
  if (!NATS_SERVER) throw new Error(String(SKIP_NO_NATS));
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-nats-"));
  const certs = opts.tls ? makeCertificates(dir) : undefined;
  const password = randomBytes(12).toString("hex");
  const nkey = createUser();
  const seed = new TextDecoder().decode(nkey.getSeed());
  const publicKey = nkey.getPublicKey();
  const conf = (port: number) => `
listen: "127.0.0.1:${port}"
jetstream { store_dir: "${join(dir, "js")}" }
${certs ? `tls { cert_file: "${certs.cert}"
  key_file: "${certs.key}" }` : ""}
authorization {
  users = [
    { user: "uniwasm", password: "${password}" }
    { nkey: "${publicKey}" }
  ]
}
`;
  let child: ChildProcess | undefined;
  let port = -1;
  const launch = async (): Promise<void> => {
    writeFileSync(join(dir, "nats.conf"), conf(port));
    const proc = spawn(NATS_SERVER!, ["-c", join(dir, "nats.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    child = proc;
    port = await new Promise<number>((resolve, reject) => {
      let log = "";
      const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 15_000);
      proc.stderr!.on("data", (c: Buffer) => {
        log += c.toString();
        const m = /Listening for client connections on [\d.]+:(\d+)/.exec(log);
        if (m && /Server is ready/.test(log)) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}: ${log}`));
      });
    });
    proc.stderr!.resume();
  };
  await launch();
  const handle: NatsHandle = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return child?.pid ?? 0;
    },
    user: "uniwasm",
    password,
    nkeySeed: seed,
    dir,
    ...(certs ? { caFile: certs.ca } : {}),
    stop: async () => {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.kill("SIGTERM");
      });
    },
    restart: async () => {
      await handle.stop();
      await launch();
    },
  };
  return handle;
}
