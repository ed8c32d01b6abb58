/**
 * `uniwasm:service`: an app calls another app of the same tenant by name,
 * through the manager (no network), as an internal request: the input is
 * the request body, the callee answers as to an HTTP request (its status
 * and body). The callee runs with its own limits and quotas; each callee is
 * a grant (the manifest's `allowed_services`); calls nest at most a few
 * deep and never in a cycle. The provider is the manager's.
 *
 *   call(name_ptr, name_len, input_ptr, input_len, status_out, response_out) -> errno
 *   response_read(response, buf_ptr, buf_cap, len_out) -> errno   (*len_out = 0 at the end)
 *   response_close(response) -> errno
 *
 * Errno is for the call itself: ENOENT no such app in the tenant; EACCES
 * (counted as denied) a callee not granted or a name of another tenant;
 * ELOOP a cycle or past the depth. What happens in the callee is its status
 * (a trap or refusal is a 5xx/429 answer, as the gateway would give).
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import { defineExtension } from "../extensions.js";
import { BufferedResponse, HandleTable, readBytes, readString, responseCalls } from "./abi-helpers.js";

export interface ServiceProvider {
  call(app: string, input: Uint8Array): { status: number; body: Uint8Array } | Promise<{ status: number; body: Uint8Array }>;
}

export const SERVICE_ABI_LIMITS = Object.freeze({
  nameBytes: 64,
  inputBytes: 64 * 1024 * 1024,
  openResponses: 8,
});

export const serviceExtension = defineExtension<HandleTable<BufferedResponse>, ServiceProvider>({
  name: "uniwasm:service",
  summary: "Call another app of the same tenant by name through the manager (each callee a grant, depth and cycles bounded).",
  needsProvider: true,
  state: () => new HandleTable<BufferedResponse>(SERVICE_ABI_LIMITS.openResponses, "response"),
  functions: {
    call: {
      params: [["name_ptr", "i32"], ["name_len", "i32"], ["input_ptr", "i32"], ["input_len", "i32"], ["status_out", "i32"], ["response_out", "i32"]],
      result: "errno",
      summary: "Call an app of this tenant with the input as its request body; *status_out its status, *response_out its answer.",
      handler: (ctx, np: number, nl: number, ip: number, il: number, statusOut: number, respOut: number) => {
        const name = readString(ctx.memory, np, nl, SERVICE_ABI_LIMITS.nameBytes, "the app name");
        const input = readBytes(ctx.memory, ip, il, SERVICE_ABI_LIMITS.inputBytes, "the input", Errno.FBIG);
        ctx.memory.check(statusOut, 4);
        ctx.memory.check(respOut, 4);
        if (ctx.state.size >= SERVICE_ABI_LIMITS.openResponses) throw new WasiError(Errno.MFILE, `at most ${SERVICE_ABI_LIMITS.openResponses} open responses; close one first`);
        const r = ctx.provider.call(name, input) as { status: number; body: Uint8Array };
        const handle = ctx.state.add(new BufferedResponse(r.status, [], r.body));
        ctx.memory.setU32(statusOut, r.status);
        ctx.memory.setU32(respOut, handle);
        return Errno.SUCCESS;
      },
    },
    ...responseCalls<ServiceProvider>("the callee's answer"),
  },
});
