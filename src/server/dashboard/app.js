// The node dashboard: plain JavaScript against the control-plane API, no build step.
"use strict";

const state = { token: localStorage.getItem("uniwasm.token") || "", who: null, tenants: [], chartTenant: "" };
const $ = (sel) => document.querySelector(sel);

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${state.token}` } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(tableId, rows) {
  const tbody = $(`#${tableId} tbody`);
  tbody.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }),
  );
}

const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;

async function login(token) {
  state.token = token;
  try {
    state.who = await api("/v1/whoami");
  } catch (err) {
    $("#login-error").textContent = String(err.message);
    return;
  }
  localStorage.setItem("uniwasm.token", token);
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = state.who.scope === "admin" ? "— admin" : `— tenant ${state.who.tenant.name}`;
  await refresh();
  setInterval(refresh, 2000);
}

async function refresh() {
  try {
    if (state.who.scope === "admin") {
      const node = await api("/v1/node");
      $("#node-panel").hidden = false;
      const dl = $("#node");
      dl.replaceChildren();
      for (const [k, v] of [
        ["runner", `${node.runner} (${node.executors} executors)`],
        ["scheduler", `${node.scheduler.running} running, ${node.scheduler.queued} queued`],
        ["memory", `${mib(node.memory.reservedBytes)} reserved of ${mib(node.memory.budgetBytes)} budget; RSS ${mib(node.memory.rssBytes)}`],
        ["gateway", node.gatewayUrl],
        ["quarantine", node.quarantine.length === 0 ? "none" : node.quarantine.map((q) => `blob ${q.digest.slice(7, 19)} (${q.images.map((i) => `${i.tenant}/${i.name}`).join(", ") || "no image"}; apps not started: ${q.apps.map((a) => `${a.tenant}/${a.name}`).join(", ") || "none"})`).join("; ")],
      ]) {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        dl.append(dt, dd);
      }
      drawMemory(node.memory.reservedBytes, node.memory.budgetBytes);
    }
    const { tenants } = await api("/v1/tenants");
    state.tenants = tenants;
    const usages = await Promise.all(tenants.map((t) => api(`/v1/tenants/${t.name}/usage`)));
    fill(
      "tenants",
      tenants.map((t, i) => {
        const live = usages[i].live;
        return [cell(t.name), cell(String(t.weight)), cell(`${live.liveInstances} / ${t.quotas.maxInstances}`), cell(`${mib(live.reservedMemoryBytes)} / ${t.quotas.memoryMiB} MiB`), cell(`${live.cpuMsLastMinute.toFixed(1)} / ${t.quotas.cpuMsPerMinute}`), cell(String(live.pacedMsLastMinute ?? 0)), cell(String(live.queued)), cell(`${t.quotas.requestsPerSecond} req/s, ${t.quotas.maxApps} apps`)];
      }),
    );
    const select = $("#chart-tenant");
    if (select.options.length !== tenants.length) {
      select.replaceChildren(...tenants.map((t) => new Option(t.name, t.name)));
      if (!state.chartTenant && tenants[0]) state.chartTenant = tenants[0].name;
      select.value = state.chartTenant;
    }
    const apps = (await Promise.all(tenants.map((t) => api(`/v1/tenants/${t.name}/apps`)))).flatMap((r) => r.apps);
    fill(
      "apps",
      apps.map((a) => {
        const denied = Object.entries(a.deniedCalls).map(([k, n]) => `${k}×${n}`).join(" ");
        return [cell(a.name), cell(a.tenant), cell(a.config.abi), cell(a.execution ? a.execution.tier : "-"), cell(a.problem ? `${a.status}: ${a.problem}` : a.status, a.problem ? "denied" : ""), cell(String(a.revision)), cell(`${a.imageName ?? ""} ${a.image.slice(7, 19)}`), cell(a.config.routes.map((r) => `${r.host}${r.path}`).join(" ")), cell(`${a.surface.length}/46: ${a.surface.join(" ")}`, "surface"), cell(denied || "none", denied ? "denied" : "")];
      }),
    );
    const instances = (await Promise.all(tenants.map((t) => api(`/v1/tenants/${t.name}/instances`).then((r) => r.instances.map((i) => ({ ...i, tenant: t.name })))))).flat();
    fill("instances", instances.map((i) => [cell(i.id), cell(i.tenant), cell(i.appName), cell(i.kind), cell(i.state), cell(String(i.requests)), cell(mib(i.memoryBytes)), cell(new Date(i.startedAt).toLocaleTimeString())]));
    if (state.chartTenant) {
      const { series } = await api(`/v1/tenants/${state.chartTenant}/stats`);
      drawSeries($("#rate-chart"), [{ values: series.map((p) => p.requests), color: "#16a34a" }]);
      drawSeries($("#latency-chart"), [
        { values: series.map((p) => p.p50), color: "#2563eb" },
        { values: series.map((p) => p.p99), color: "#dc2626" },
      ]);
    }
  } catch (err) {
    console.error(err);
  }
}

function drawSeries(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const max = Math.max(1e-9, ...lines.flatMap((l) => l.values.filter((v) => v !== null)));
  ctx.fillStyle = "#5b6577";
  ctx.font = "11px system-ui";
  ctx.fillText(max >= 10 ? max.toFixed(0) : max.toFixed(2), 2, 11);
  for (const line of lines) {
    ctx.strokeStyle = line.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    line.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      const x = (i / Math.max(1, line.values.length - 1)) * width;
      const y = height - 2 - (v / max) * (height - 16);
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
    // Dots too, so a lone second of traffic is visible.
    ctx.fillStyle = line.color;
    line.values.forEach((v, i) => {
      if (v === null || v === 0) return;
      const x = (i / Math.max(1, line.values.length - 1)) * width;
      const y = height - 2 - (v / max) * (height - 16);
      ctx.fillRect(x - 2, y - 2, 4, 4);
    });
  }
}

function drawMemory(used, budget) {
  const canvas = $("#memory-chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#e5e9f0";
  ctx.fillRect(0, 20, canvas.width, 24);
  ctx.fillStyle = "#7c3aed";
  ctx.fillRect(0, 20, (used / Math.max(1, budget)) * canvas.width, 24);
  ctx.fillStyle = "#1d2330";
  ctx.font = "12px system-ui";
  ctx.fillText(`memory reserved by live instances: ${mib(used)} of ${mib(budget)}`, 2, 14);
}

$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  login($("#token").value.trim());
});
$("#logout").addEventListener("click", () => {
  localStorage.removeItem("uniwasm.token");
  location.reload();
});
$("#chart-tenant").addEventListener("change", (e) => {
  state.chartTenant = e.target.value;
  refresh();
});
if (state.token) login(state.token);
