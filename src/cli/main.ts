import { Command, CommanderError } from "commander";
import { registerRun } from "./commands/run.js";
import { registerCall } from "./commands/call.js";
import { registerInspect } from "./commands/inspect.js";
import { registerBuild } from "./commands/build.js";
import { registerImages } from "./commands/images.js";
import { registerRmi } from "./commands/rmi.js";
import { registerKey } from "./commands/key.js";
import { registerPush } from "./commands/push.js";
import { registerPull } from "./commands/pull.js";
import { registerSave } from "./commands/save.js";
import { registerLoad } from "./commands/load.js";
import { registerTrust } from "./commands/trust.js";
import { ImageError } from "../image/errors.js";
import { registerServe } from "./commands/serve.js";
import { registerDeploy } from "./commands/deploy.js";
import { registerPs } from "./commands/ps.js";
import { registerLogs } from "./commands/logs.js";
import { registerRm } from "./commands/rm.js";
import { registerTenants } from "./commands/tenants.js";
import { registerTokens } from "./commands/tokens.js";
import { registerNodeConfig } from "./commands/node-config.js";
import { registerNew } from "./commands/new.js";
import { registerDev } from "./commands/dev.js";
import { VERSION } from "../version.js";

/**
 * Builds the `uniwasm` program. Each command lives in its own file under
 * ./commands and registers itself here.
 */
export function buildProgram(): Command {
  const program = new Command("uniwasm")
    .description("Run WebAssembly programs as capability-secure unikernel-style micro-instances.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerRun(program);
  registerCall(program);
  registerInspect(program);
  registerBuild(program);
  registerImages(program);
  registerRmi(program);
  registerKey(program);
  registerPush(program);
  registerPull(program);
  registerSave(program);
  registerLoad(program);
  registerTrust(program);
  registerServe(program);
  registerDeploy(program);
  registerPs(program);
  registerLogs(program);
  registerRm(program);
  registerTenants(program);
  registerTokens(program);
  registerNodeConfig(program);
  registerNew(program);
  registerDev(program);
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode;
    }
    // An image refused by `run`/`inspect` (tampered, unsigned, untrusted) is the user's problem: one line, no stack.
    if (err instanceof ImageError) {
      process.stderr.write(`uniwasm: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
