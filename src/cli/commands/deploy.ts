import { Command, Option } from "commander";
import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { clientFrom, cliAction, ClientError, type NodeFlags } from "../../server/client.js";

interface DeployFlags extends NodeFlags {
  name?: string;
  tenant?: string;
  image?: string;
  abi?: string;
  env: string[];
  unsetEnv: string[];
  route: string[];
  arg: string[];
  memory?: string;
  timeout?: string;
  fuel?: string;
  maxBody?: string;
  stdout?: string;
  stderr?: string;
  openFiles?: string;
  tier?: string;
  min?: string;
  max?: string;
  idle?: string;
  replicas?: string;
  json?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ClientError("bad_flag", `--${flag} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The limit flags as the API's limits (docs/limits.md), or undefined when none was given. */
function limitFlags(f: DeployFlags): Record<string, string | null> | undefined {
  return defined({
    maxMemoryBytes: f.memory,
    timeoutMs: f.timeout,
    fuel: f.fuel === "none" ? null : f.fuel,
    maxBodyBytes: f.maxBody,
    stdoutBytes: f.stdout,
    stderrBytes: f.stderr,
    openFiles: f.openFiles,
    tier: f.tier,
  });
}

function defined<T extends object>(o: T): Partial<T> | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return Object.keys(out).length ? out : undefined;
}

// --route example.com/api; --route /api (the app's own host); --route '*'/api (any host: admins only)
function parseRoute(r: string): { host?: string; path: string } {
  const slash = r.indexOf("/");
  if (slash < 0) return { host: r, path: "/" };
  return slash === 0 ? { path: r } : { host: r.slice(0, slash), path: r.slice(slash) };
}

export function registerDeploy(program: Command): void {
  program
    .command("deploy [file]")
    .description("Upload a module (.wasm) or image tarball (.tar) and deploy it as an app, or update the app (zero-downtime)")
    .option("--name <app>", "app name (default: the file name without extension)")
    .option("--tenant <name>", "tenant (default: the token's own)")
    .option("--image <ref>", "deploy an image already on the node (digest, prefix or name) instead of a file")
    .addOption(new Option("--abi <abi>", "how requests reach the module").choices(["wagi", "reactor", "service"]))
    .option("--env <NAME=VALUE>", "set an environment variable, repeatable (a redeploy keeps the ones set before)", collect, [])
    .option("--unset-env <NAME>", "remove an environment variable an earlier deploy set, repeatable", collect, [])
    .option("--arg <arg>", "argument for services, repeatable", collect, [])
    .option("--route <[host]/path>", "HTTP route, repeatable: a host the tenant owns, or none for the app's own host; '*' (any host) is for admins (every app also gets <app>.<tenant>.localhost/)", collect, [])
    .option("--memory <SIZE>", "most linear memory per instance (e.g. 64M, 1G; binary units: 16MB = 16MiB)")
    .option("--timeout <DURATION>", "deadline per request (e.g. 500ms, 5s, 1m)")
    .option("--fuel <N|none>", "instruction budget per request; none: not metered")
    .option("--max-body <SIZE>", "largest request body (e.g. 1M)")
    .option("--stdout <SIZE>", "most bytes a request may write to stdout: the response (e.g. 16M)")
    .option("--stderr <SIZE>", "most bytes a request may write to stderr (e.g. 1M)")
    .option("--open-files <N>", "most descriptors open at once per instance")
    .option("--tier <TIER>", "where the app's executors live: isolate, process (sandboxed processes: bubblewrap + seccomp) or gvisor; the node may raise it to its minimum")
    .option("--min <n>", "warm instances kept (0 = scale to zero)")
    .option("--max <n>", "most instances")
    .option("--idle <ms>", "idle time before a warm instance stops")
    .option("--replicas <n|all>", "in a cluster: how many nodes run the app, or all of them (default 1)")
    .option("--json", "print the app as JSON")
    .option("--node <url>", "node API URL")
    .option("--token <token>", "API token")
    .action((file: string | undefined, f: DeployFlags) =>
      cliAction(async () => {
        if (!file && !f.image) throw new ClientError("bad_flag", "give a .wasm or image .tar file, or --image REF for an image already on the node");
        const client = clientFrom(f);
        const tenant = encodeURIComponent(await client.tenant(f.tenant));
        const name = f.name ?? (file ? basename(file).replace(/\.(wasm|tar)$/, "").toLowerCase().replace(/[^a-z0-9-]/g, "-") : undefined);
        if (!name) throw new ClientError("bad_flag", "--name is needed with --image");
        let image = f.image;
        if (file) {
          let bytes: Buffer;
          try {
            if (!statSync(file).isFile()) throw new Error("not a file");
            bytes = readFileSync(file);
          } catch (err) {
            throw new ClientError("bad_file", `cannot read ${file}: ${(err as Error).message}`);
          }
          const tar = file.endsWith(".tar");
          const q = `?name=${encodeURIComponent(name)}${f.abi ? `&abi=${f.abi}` : ""}`;
          const up = await client.request("POST", `/v1/tenants/${tenant}/images${tar ? "" : q}`, new Uint8Array(bytes), tar ? "application/x-tar" : "application/wasm");
          process.stderr.write(`uploaded ${file}: ${up.digest} (${up.size} bytes, ${up.surface.wasiCalls.length} WASI calls imported)\n`);
          image = up.digest;
        }
        const given: Record<string, string> = {};
        for (const e of f.env) {
          const i = e.indexOf("=");
          if (i <= 0) throw new ClientError("bad_flag", `--env takes NAME=VALUE, got ${JSON.stringify(e)}`);
          given[e.slice(0, i)] = e.slice(i + 1);
        }
        // A redeploy keeps every setting it does not give (the node keeps them); --env and
        // --unset-env change the env an earlier deploy set, one variable at a time.
        let env: Record<string, string> | undefined;
        if (f.env.length > 0 || f.unsetEnv.length > 0) {
          const current = await client.request("GET", `/v1/tenants/${tenant}/apps/${encodeURIComponent(name)}`).catch((err: unknown) => {
            if (err instanceof ClientError && err.code === "app_not_found") return undefined;
            throw err;
          });
          const earlier: Record<string, string> = current ? (current.config.settings?.env ?? current.config.env) : {};
          for (const n of f.unsetEnv) {
            if (!(n in earlier) && !(n in given)) throw new ClientError("bad_flag", `--unset-env ${n}: the app has no env ${n} set by a deploy${current ? ` (set: ${Object.keys(earlier).join(", ") || "none"})` : ""}`);
          }
          env = { ...earlier, ...given };
          for (const n of f.unsetEnv) delete env[n];
          const kept = Object.keys(earlier).filter((n) => !(n in given) && !f.unsetEnv.includes(n));
          if (kept.length > 0) process.stderr.write(`keeping env ${kept.join(", ")} from the app's earlier deploy (--unset-env NAME removes one)\n`);
        }
        const body = {
          image,
          ...(f.abi ? { abi: f.abi } : {}),
          ...(env ? { env } : {}),
          ...(f.arg.length ? { args: f.arg } : {}),
          ...(f.replicas !== undefined ? { replicas: f.replicas === "all" ? "all" : num("replicas", f.replicas) } : {}),
          ...(f.route.length ? { routes: f.route.map(parseRoute) } : {}),
          // As written: the node reads them in the one size/duration grammar and names a bad one.
          ...(limitFlags(f) ? { limits: limitFlags(f) } : {}),
          ...(defined({ minInstances: num("min", f.min), maxInstances: num("max", f.max), idleTimeoutMs: num("idle", f.idle) }) ? { scale: defined({ minInstances: num("min", f.min), maxInstances: num("max", f.max), idleTimeoutMs: num("idle", f.idle) }) } : {}),
        };
        const app = await client.request("PUT", `/v1/tenants/${tenant}/apps/${encodeURIComponent(name)}`, body);
        if (f.json) return void process.stdout.write(JSON.stringify(app, null, 2) + "\n");
        process.stdout.write(`deployed ${app.tenant}/${app.name} revision ${app.revision} (${app.config.abi}, image ${app.image.slice(0, 19)})\n`);
        if (app.replicas) process.stdout.write(`  replicas: ${app.replicas.map((r: { node: string; state: string }) => `${r.node} ${r.state}`).join(", ") || "none yet"}${app.placement?.short ? ` (${app.placement.short})` : ""}\n`);
        for (const u of app.urls) process.stdout.write(`  ${u}\n`);
        const def = app.config.routes.find((r: { host: string }) => r.host.endsWith(".localhost"));
        if (def) process.stdout.write(`try: curl -H 'Host: ${def.host}' ${app.urls[0].split(" ")[0]}\n`);
      }),
    );
}
