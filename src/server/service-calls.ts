/**
 * uniwasm:service on a node: an app calls another app of its own tenant by
 * name, as an internal HTTP request that never touches the network. The
 * call goes through the resource manager like a gateway request (the
 * callee's own limits, its tenant's rate and CPU quotas, its warm pool),
 * and the callee answers with a CGI response, read with the gateway's parser.
 *
 * Checks, in order: the name is an app name (a name qualified with another
 * tenant is refused), the callee is granted (`allowed_services`), it exists
 * in the caller's tenant, and it is not already in the call chain nor
 * beyond MAX_SERVICE_DEPTH. Refusals by policy are counted as denied calls.
 */
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import { ExtensionDenied } from "../kernel/extensions.js";
import type { ResourceManager } from "../manager/manager.js";
import type { ServiceCaller } from "../manager/extension-providers.js";
import { Refusal } from "../manager/refusal.js";
import type { AppRecord } from "../store/types.js";
import { ERROR_CATALOGUE } from "./errors.js";
import { CgiError, CgiResponseParser } from "./wagi.js";

/** Most apps in one chain of service calls (the first caller included). */
export const MAX_SERVICE_DEPTH = 4;

const APP_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

export interface ServiceCallHooks {
  /** The callee's stderr, for its logs. */
  stderr?(appId: string, chunk: Uint8Array): void;
  /** A platform event for an app's log (a refused call). */
  event?(appId: string, line: string): void;
  /**
   * In a cluster: calls a callee that has no replica on this node on a node
   * that runs one (the checks are done here; that node runs `invoke`).
   */
  remote?(call: { callee: AppRecord; callerName: string; chain: string[]; input: Uint8Array }): Promise<{ status: number; body: Uint8Array }>;
}

const encoder = new TextEncoder();
const answer = (status: number, message: string): { status: number; body: Uint8Array } => ({ status, body: encoder.encode(JSON.stringify({ error: { message } })) });

export class ServiceCalls {
  constructor(
    private readonly findApp: (tenantId: string, name: string) => AppRecord | undefined,
    private readonly manager: ResourceManager,
    private readonly hooks: ServiceCallHooks = {},
  ) {}

  async call(caller: ServiceCaller, name: string, input: Uint8Array): Promise<{ status: number; body: Uint8Array }> {
    if (!APP_NAME_RE.test(name)) {
      this.hooks.event?.(caller.appId, `service call to ${JSON.stringify(name.slice(0, 80))} refused: not an app name of this tenant`);
      throw new ExtensionDenied(Errno.ACCES, `${JSON.stringify(name.slice(0, 80))} is not an app name of this tenant (apps of other tenants cannot be called)`);
    }
    if (!caller.allowed.includes(name)) {
      this.hooks.event?.(caller.appId, `service call to ${name} refused: not in allowed_services`);
      throw new ExtensionDenied(Errno.ACCES, `app ${name} is not granted (capabilities.allowed_services)`);
    }
    const callee = this.findApp(caller.tenantId, name);
    if (!callee) throw new WasiError(Errno.NOENT, `no app ${name} in this tenant`);
    const chain = [...caller.chain, caller.appId];
    if (chain.includes(callee.id)) throw new WasiError(Errno.LOOP, `calling ${name} would make a cycle (it is already in the call chain)`);
    if (chain.length >= MAX_SERVICE_DEPTH) throw new WasiError(Errno.LOOP, `service calls nest at most ${MAX_SERVICE_DEPTH} apps deep`);
    if (this.hooks.remote && !this.manager.deployment(callee.id)) return this.hooks.remote({ callee, callerName: caller.appName, chain, input });
    return this.invoke(callee, caller.appName, chain, input, caller.executor);
  }

  /** Runs a checked call on this node: the callee's request through the manager, its CGI answer parsed. */
  async invoke(callee: AppRecord, callerName: string, chain: string[], input: Uint8Array, avoidExecutor?: number): Promise<{ status: number; body: Uint8Array }> {
    const name = callee.name;
    const limit = callee.config.limits.stdoutBytes;
    let status = 200;
    const body: Uint8Array[] = [];
    let size = 0;
    let failure: string | undefined;
    const parser = new CgiResponseParser(
      (head) => (status = head.status),
      (chunk) => {
        size += chunk.length;
        if (size > limit) throw new CgiError(`the response is over ${name}'s limit of ${limit} bytes`);
        body.push(chunk);
      },
    );
    let outcome;
    try {
      outcome = await this.manager.invoke(callee.id, {
        env: {
          ...callee.config.env,
          REQUEST_METHOD: "POST",
          PATH_INFO: "/",
          SCRIPT_NAME: "",
          QUERY_STRING: "",
          CONTENT_LENGTH: String(input.length),
          CONTENT_TYPE: "application/octet-stream",
          GATEWAY_INTERFACE: "CGI/1.1",
          SERVER_PROTOCOL: "HTTP/1.1",
          X_UNIWASM_CALLER: callerName,
        },
        args: [`/${name}`],
        body: input,
        sinks: {
          onStdout: (chunk) => {
            if (failure) return;
            try {
              parser.push(chunk);
            } catch (err) {
              failure = (err as Error).message;
            }
          },
          onStderr: (chunk) => this.hooks.stderr?.(callee.id, chunk),
        },
        chain,
        ...(avoidExecutor !== undefined ? { avoidExecutor } : {}),
      });
    } catch (err) {
      if (err instanceof Refusal) return answer(ERROR_CATALOGUE[err.code as keyof typeof ERROR_CATALOGUE]?.status ?? 503, `${name}: ${err.message}`);
      throw err;
    }
    const failed = outcome.reason !== "exit" || (callee.config.abi === "reactor" && outcome.exitCode !== 0);
    if (failed) return answer(outcome.reason === "deadline_exceeded" ? 504 : 502, `${name} failed: ${outcome.reason}${outcome.message ? `: ${outcome.message}` : ""}`);
    if (failure || !parser.done) return answer(502, `${name} answered without a valid CGI response${failure ? `: ${failure}` : ""}`);
    return { status, body: new Uint8Array(Buffer.concat(body)) };
  }
}
