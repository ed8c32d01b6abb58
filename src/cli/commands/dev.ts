import { Command } from "commander";
import { DevError, DevServer, type DevEvent } from "../../server/dev.js";

function time(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** What `uniwasm dev` prints for each event: build output as is, one line per request, a trap's backtrace under its request. */
export function formatDevEvent(e: DevEvent): string {
  switch (e.kind) {
    case "build":
      return `uniwasm dev: ${e.reason === "start" ? "building" : `${e.reason}; rebuilding`}${e.command ? ` (${e.command})` : ""}\n`;
    case "build-output":
      return e.text.endsWith("\n") ? e.text : e.text + "\n";
    case "build-failed":
      return `uniwasm dev: build failed: ${e.message}\n`;
    case "ready":
      return e.first
        ? `uniwasm dev: serving ${e.app} at ${e.url}  (revision ${e.revision}, built in ${(e.buildMs / 1000).toFixed(1)} s; edits reload it, Ctrl-C stops)\n`
        : `uniwasm dev: reloaded ${e.app}: revision ${e.revision}, built in ${(e.buildMs / 1000).toFixed(1)} s\n`;
    case "stderr":
      return `  stderr| ${e.line}\n`;
    case "request": {
      const r = e.request;
      let out = `${time()} ${r.method} ${r.path} ${r.status} ${r.ms.toFixed(1)} ms`;
      if (r.failure) out += `  ${r.failure.message}`;
      out += "\n";
      if (r.failure?.trap && r.failure.trap.frames.length > 0) out += `  wasm backtrace:\n${r.failure.trap.backtrace.replace(/^/gm, "  ")}\n`;
      return out;
    }
  }
}

export function registerDev(program: Command): void {
  program
    .command("dev")
    .description("Build an app, serve it on a local gateway, and rebuild and reload it on every change")
    .argument("[dir]", "the app's directory (uniwasm.toml, sources, build.sh)", ".")
    .option("-p, --port <n>", "gateway port on 127.0.0.1 (0 picks a free one)", "8080")
    .addHelpText("after", `
The app runs as a node runs it (the same gateway and executors), answering / and its
manifest's routes on http://127.0.0.1:PORT/ with no tenant or token to set up. build.sh, when
the directory has one, runs before each build. Each request prints one line; a trap prints
its wasm backtrace with function names.`)
    .action(async (dir: string, flags: { port: string }) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        process.stderr.write(`uniwasm dev: --port must be a port number (0-65535), got ${JSON.stringify(flags.port)}\n`);
        process.exitCode = 2;
        return;
      }
      let dev: DevServer;
      try {
        dev = await DevServer.start({ dir, port, onEvent: (e) => process.stdout.write(formatDevEvent(e)) });
      } catch (err) {
        if (!(err instanceof DevError)) throw err;
        process.stderr.write(`uniwasm dev: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = () => void dev.close().then(resolve, resolve);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
