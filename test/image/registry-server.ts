/**
 * Starts a real OCI registry for tests: Debian's `docker-registry` (the CNCF
 * Distribution registry) on 127.0.0.1 with filesystem storage in a temp dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { cleanup, tempDir } from "./helpers.js";

export const REGISTRY_BIN = "/usr/bin/docker-registry";
export const REGISTRY_SKIP = existsSync(REGISTRY_BIN) ? false : "docker-registry not installed (apt-get install docker-registry)";

export interface RegistryServer {
  /** host:port, e.g. 127.0.0.1:40123 */
  address: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Extra config.yml lines for the registry (e.g. an `auth:` section), given the temp dir. */
export type ExtraConfig = (dir: string) => Promise<string[]> | string[];

export async function startRegistry(extra?: ExtraConfig): Promise<RegistryServer> {
  const dir = await tempDir("registry");
  const extraLines = extra ? await extra(dir) : [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(dir, "config.yml");
    await writeFile(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${join(dir, "data")}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: 127.0.0.1:${port}`,
        ...extraLines,
        "",
      ].join("\n"),
    );
    const child: ChildProcess = spawn(REGISTRY_BIN, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    const address = `127.0.0.1:${port}`;
    // Wait for /v2/ to answer: at most 100 polls of 50 ms.
    for (let i = 0; i < 100 && !exited; i++) {
      try {
        const res = await fetch(`http://${address}/v2/`);
        await res.body?.cancel();
        // 401 is a registry that is up and wants a token.
        if (res.status === 200 || res.status === 401) {
          return {
            address,
            stop: async () => {
              if (!exited) {
                const gone = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await gone;
              }
              await cleanup(dir);
            },
          };
        }
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    if (!exited) await new Promise((r) => child.once("exit", r));
    if (attempt === 2) throw new Error(`docker-registry did not start on ${address}: ${stderr.slice(0, 500)}`);
  }
  throw new Error("unreachable");
}
