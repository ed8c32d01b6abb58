/**
 * The one catalogue of errors the node answers with, on the API and the
 * gateway alike: `{"error": {"code", "message"}}` with the status below.
 * docs/api.md documents every code (a test fails when one is missing).
 */
export const ERROR_CATALOGUE = {
  bad_request: { status: 400, message: "The request is malformed." },
  invalid_config: { status: 400, message: "The app or image configuration is invalid." },
  invalid_module: { status: 400, message: "The uploaded bytes are not a WebAssembly module this node can run." },
  invalid_image: { status: 400, message: "The uploaded image is invalid." },
  unauthorized: { status: 401, message: "Missing or unknown API token; send `Authorization: Bearer <token>`." },
  forbidden: { status: 403, message: "This token may not do that." },
  quota_exceeded: { status: 403, message: "The tenant's quota does not allow that." },
  signature_required: { status: 403, message: "The node's signature policy refuses this image." },
  host_not_owned: { status: 403, message: "The tenant does not own that host." },
  domain_not_verified: { status: 403, message: "The domain's DNS TXT record does not prove control yet." },
  capability_refused: { status: 403, message: "The image asks for a capability this node does not grant to tenants (a host directory or a listening socket)." },
  not_found: { status: 404, message: "No such route." },
  tenant_not_found: { status: 404, message: "No such tenant." },
  token_not_found: { status: 404, message: "No such token." },
  image_not_found: { status: 404, message: "No such image." },
  app_not_found: { status: 404, message: "No such app." },
  instance_not_found: { status: 404, message: "No such instance." },
  domain_not_found: { status: 404, message: "No such domain claim." },
  variable_not_found: { status: 404, message: "No such variable." },
  no_route: { status: 404, message: "No app is deployed at this host and path." },
  method_not_allowed: { status: 405, message: "Method not allowed." },
  tenant_exists: { status: 409, message: "A tenant with that name exists." },
  route_conflict: { status: 409, message: "Another app already owns that route." },
  app_changed: { status: 409, message: "The app changed while the request was being handled; retry." },
  image_in_use: { status: 409, message: "Apps still use this image." },
  domain_taken: { status: 409, message: "Another tenant owns that host." },
  payload_too_large: { status: 413, message: "The request body is too large." },
  unsupported_media_type: { status: 415, message: "Unsupported Content-Type." },
  tenant_rate_limited: { status: 429, message: "The tenant is over its request rate." },
  tenant_cpu_exhausted: { status: 429, message: "The tenant used its CPU time for this minute, or is over its share of the node's CPU." },
  tenant_overloaded: { status: 429, message: "The tenant has too many requests waiting." },
  tenant_concurrency_limited: { status: 429, message: "The tenant's request waited too long behind its own requests (its maxConcurrency)." },
  tenant_memory_exhausted: { status: 429, message: "The tenant's memory quota is in use." },
  internal: { status: 500, message: "Internal error." },
  not_implemented: { status: 501, message: "Not available on this node." },
  guest_error: { status: 502, message: "The app failed to produce a response." },
  pull_failed: { status: 502, message: "Pulling the image from its registry failed." },
  node_overloaded: { status: 503, message: "The node is at capacity." },
  app_unavailable: { status: 503, message: "The app cannot start right now." },
  cluster_unavailable: { status: 503, message: "The cluster's control state cannot be changed right now (its NATS servers are unreachable from this node)." },
  guest_timeout: { status: 504, message: "The app did not answer before its deadline." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId?: string };
}

/** An error the node reports to its client; everything else becomes `internal`. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** Seconds for a Retry-After header (429/503). */
    readonly retryAfter?: number,
  ) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = "ApiError";
    this.status = ERROR_CATALOGUE[code].status;
  }

  body(requestId?: string): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(requestId ? { requestId } : {}) } };
  }
}

export function errorBody(code: ErrorCode, message?: string, requestId?: string): ErrorBody {
  return new ApiError(code, message).body(requestId);
}
