import { randomBytes } from "node:crypto";

/** Short random ids with a kind prefix (`t_`, `a_`, `tok_`), readable in logs and URLs. */
export function newId(prefix: string, bytes = 9): string {
  return `${prefix}_${randomBytes(bytes).toString("base64url")}`;
}
