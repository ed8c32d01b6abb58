/**
 * `uniwasm:variables`: named configuration values and secrets, set per app
 * by its operator (the node's API, `--var` on the command line), read by the
 * guest only for the names it is granted (the manifest's
 * `capabilities.variables`).
 *
 *   get(name_ptr, name_len, buf_ptr, buf_cap, len_out) -> errno
 *
 * ENOENT: granted but not set; EACCES (counted as denied): not granted;
 * ENOBUFS (with *len_out): the buffer is too small. Secrets read like any
 * value: "secret" means write-only for people (never listed, never logged),
 * not hidden from the app that is granted it.
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import { defineExtension } from "../extensions.js";
import { readString, writeResult } from "./abi-helpers.js";

export interface VariablesProvider {
  /** The value, null when granted but not set; ExtensionDenied(EACCES) when the name is not granted. */
  get(name: string): string | null;
}

/** Variable names as the API and the manifest accept them. */
export const VARIABLE_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

export const variablesExtension = defineExtension<undefined, VariablesProvider>({
  name: "uniwasm:variables",
  summary: "Named configuration values and secrets set per app, readable only when granted by name.",
  needsProvider: true,
  functions: {
    get: {
      params: [["name_ptr", "i32"], ["name_len", "i32"], ["buf_ptr", "i32"], ["buf_cap", "i32"], ["len_out", "i32"]],
      result: "errno",
      summary: "Read a variable: ENOENT when not set, EACCES when not granted, ENOBUFS (and *len_out) when the buffer is too small.",
      handler: (ctx, np: number, nl: number, buf: number, cap: number, lenOut: number) => {
        const name = readString(ctx.memory, np, nl, 64, "the variable name");
        if (!VARIABLE_NAME_RE.test(name)) throw new WasiError(Errno.INVAL, `${JSON.stringify(name)} is not a variable name ([a-z][a-z0-9_]*)`);
        ctx.memory.check(lenOut, 4);
        const v = ctx.provider.get(name);
        if (v === null) throw new WasiError(Errno.NOENT, `variable ${name} is not set`);
        return writeResult(ctx.memory, buf, cap, lenOut, new TextEncoder().encode(v));
      },
    },
  },
});
