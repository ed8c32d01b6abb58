import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

type CounterChild = ReturnType<Counter<string>["labels"]>;
type GaugeChild = ReturnType<Gauge<string>["labels"]>;
type HistogramChild = ReturnType<Histogram<string>["labels"]>;

/**
 * The series one app's requests touch, bound to its labels once: an unbound
 * prom-client call hashes its label object every time (~16 µs of a request's
 * serving-thread time for the five per request; bound, ~5).
 */
export interface AppMeters {
  requests(status: number): CounterChild;
  latency: HistogramChild;
  starts: { cold: CounterChild; warm: CounterChild };
  fuel: CounterChild;
  memory: GaugeChild;
  queueWait: HistogramChild;
}

/** The node's Prometheus metrics, in a registry of its own (two nodes in one process never mix). */
export class NodeMetrics {
  private readonly apps = new Map<string, AppMeters>();
  readonly registry = new Registry();
  readonly requests: Counter<"tenant" | "app" | "status">;
  readonly forwarded: Counter<"tenant" | "app" | "status">;
  readonly latency: Histogram<"tenant" | "app">;
  readonly starts: Counter<"tenant" | "app" | "kind">;
  readonly fuel: Counter<"tenant" | "app">;
  readonly memory: Gauge<"tenant" | "app">;
  readonly denied: Counter<"tenant" | "app" | "call">;
  readonly limitHits: Counter<"tenant" | "app" | "reason">;
  readonly refusals: Counter<"tenant" | "code">;
  readonly queueWait: Histogram<"tenant">;
  readonly liveInstances: Gauge<"tenant">;
  readonly connectionsShed: Counter<"server" | "reason">;
  readonly connections: Gauge<"server">;
  readonly prepareCpu: Counter<"tenant">;
  readonly servingThreadCpu: Counter<"tenant">;
  readonly paced: Counter<"tenant" | "resource">;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "uniwasm_" });
    const registers = [this.registry];
    this.requests = new Counter({ name: "uniwasm_requests_total", help: "Gateway requests by tenant, app and HTTP status", labelNames: ["tenant", "app", "status"], registers });
    this.forwarded = new Counter({ name: "uniwasm_forwarded_requests_total", help: "Gateway requests this node forwarded to another node of its cluster (counted there in uniwasm_requests_total)", labelNames: ["tenant", "app", "status"], registers });
    this.latency = new Histogram({
      name: "uniwasm_request_duration_seconds",
      help: "Gateway request latency, from the first byte received to the last byte sent",
      labelNames: ["tenant", "app"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.starts = new Counter({ name: "uniwasm_instance_starts_total", help: "Requests served by a freshly started instance (cold) or a warm one", labelNames: ["tenant", "app", "kind"], registers });
    this.fuel = new Counter({ name: "uniwasm_fuel_consumed_total", help: "Fuel (metered instructions) consumed", labelNames: ["tenant", "app"], registers });
    this.memory = new Gauge({ name: "uniwasm_instance_memory_bytes", help: "Linear memory of the app's most recent instance", labelNames: ["tenant", "app"], registers });
    this.denied = new Counter({ name: "uniwasm_denied_host_calls_total", help: "Host calls refused for lack of a capability", labelNames: ["tenant", "app", "call"], registers });
    this.limitHits = new Counter({ name: "uniwasm_limit_hits_total", help: "Instances ended by a limit, by reason", labelNames: ["tenant", "app", "reason"], registers });
    this.refusals = new Counter({ name: "uniwasm_admission_refusals_total", help: "Requests refused by admission control, by error code", labelNames: ["tenant", "code"], registers });
    this.queueWait = new Histogram({ name: "uniwasm_queue_wait_seconds", help: "Time a request waited for an executor", labelNames: ["tenant"], buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers });
    this.liveInstances = new Gauge({ name: "uniwasm_live_instances", help: "Live instances per tenant", labelNames: ["tenant"], registers });
    this.connectionsShed = new Counter({ name: "uniwasm_connections_shed_total", help: "Connections closed at accept because a cap was reached (reason: total or per_ip), by server (gateway, api)", labelNames: ["server", "reason"], registers });
    this.paced = new Counter({ name: "uniwasm_paced_seconds_total", help: "Time a tenant was made to wait for its share while other tenants were active (resource cpu: its requests, before they were scheduled; serving_thread: its guests, for their output relay and provider calls)", labelNames: ["tenant", "resource"], registers });
    this.servingThreadCpu = new Counter({ name: "uniwasm_serving_thread_seconds_total", help: "Time the node's serving thread spent for a tenant (its extension provider calls, relaying its guests' output), charged to the tenant's CPU quota", labelNames: ["tenant"], registers });
    this.prepareCpu = new Counter({ name: "uniwasm_prepare_cpu_seconds_total", help: "CPU time spent preparing (checking, rewriting, compiling) tenants' modules, charged to the tenant", labelNames: ["tenant"], registers });
    this.connections = new Gauge({ name: "uniwasm_open_connections", help: "Open client connections, by server (gateway, api)", labelNames: ["server"], registers });
  }

  /** The bound series of one tenant's app (made on first use; bounded, since names come from tenants). */
  forApp(tenant: string, app: string): AppMeters {
    const key = `${tenant}\0${app}`;
    let m = this.apps.get(key);
    if (!m) {
      if (this.apps.size >= 10_000) this.apps.clear();
      const byStatus = new Map<number, CounterChild>();
      m = {
        requests: (status) => {
          let c = byStatus.get(status);
          if (!c) byStatus.set(status, (c = this.requests.labels(tenant, app, String(status))));
          return c;
        },
        latency: this.latency.labels(tenant, app),
        starts: { cold: this.starts.labels(tenant, app, "cold"), warm: this.starts.labels(tenant, app, "warm") },
        fuel: this.fuel.labels(tenant, app),
        memory: this.memory.labels(tenant, app),
        queueWait: this.queueWait.labels(tenant),
      };
      this.apps.set(key, m);
    }
    return m;
  }
}
