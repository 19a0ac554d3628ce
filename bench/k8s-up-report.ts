/**
 * BENCHMARKS.md's section of bench/k8s-up.ts (rendered by bench/report.ts): the prod-like kubernetes
 * stack's `up` next to its baselines, where a no-change `up`'s time goes, and the build times of the
 * test cluster's pieces, read from the `build-seconds` file the build scripts write into each cache
 * directory (scripts/ensure-k8s-tools.sh, scripts/ensure-pulumi-kubernetes.sh).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { K8sUpBenchResult, Sampled } from "./k8s-up";

export const K8S_UP_HEADING =
  "## Kubernetes: the prod-like stack's `up` and building the pieces (`bench/k8s-up.ts`)";

const s1 = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : "–");
const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const pct = (part: number, whole: number): string =>
  Number.isFinite(part / whole) ? `${Math.round((100 * part) / whole)} %` : "–";
const loads = (l: number[]): string => l.map((x) => x.toFixed(2)).join(" / ");

function failedNote(s: Sampled): string {
  const failed = s.samples.filter((x) => !x.ok).length;
  return failed > 0 ? `; **${failed} of ${s.samples.length} FAILED**` : "";
}

/** "median (n=…)" and "min – max" of a run's successful samples. */
function timing(s: Sampled): { median: string; range: string } {
  return {
    median: `${s1(s.median)} (n=${s.n}${failedNote(s)})`,
    range: s.n > 0 ? `${s1(s.min)} – ${s1(s.max)}` : "–",
  };
}

const sampleLoads = (s: Sampled): string =>
  s.samples.length > 0
    ? `${Math.min(...s.samples.map((x) => x.load))}–${Math.max(...s.samples.map((x) => x.load))}`
    : "–";

const resources = (s: Sampled): string => String(s.samples.find((x) => x.ok)?.resources ?? "–");

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** "N (S ms)": the median API requests of the runs and the median server time they took. */
function apiCell(s: Sampled): string {
  const api = s.samples.flatMap((x) => (x.api ? [x.api] : []));
  if (api.length === 0) return "–";
  return `${median(api.map((a) => a.total))} (${(median(api.map((a) => a.serverSeconds)) * 1000).toFixed(0)} ms)`;
}

/** Any no-change run that changed something (it should not: the figure is then not a no-change one). */
function unexpectedChanges(r: K8sUpBenchResult): string[] {
  const nc = r.noChange;
  const runs: Array<[string, Sampled]> = [
    ["kubernetes", nc.k8s],
    ["local", nc.local],
    ["platform only", nc.platformOnly],
    ["preview", nc.preview],
  ];
  return runs.flatMap(([name, s]) =>
    s.samples
      .filter((x) => x.ok && Object.keys(x.changes).some((op) => op !== "same"))
      .map((x) => `${name}: ${JSON.stringify(x.changes)}`),
  );
}

const cpuCell = (s: Sampled): string => (s.cpuMs ? s1(s.cpuMs.median) : "–");

/** "wall ratio (CPU ratio)" of a over b. */
function ratios(a: Sampled, b: Sampled): string {
  const cpu = a.cpuMs && b.cpuMs ? ` (CPU ${times(a.cpuMs.median / b.cpuMs.median)})` : "";
  return `${times(a.median / b.median)}${cpu}`;
}

/** Where a no-change `up`'s CPU goes: the fixed cost, the platform's objects, the tenants' resources. */
function whereTheTimeGoes(r: K8sUpBenchResult): string {
  const nc = r.noChange;
  if (!nc.k8s.cpuMs || !nc.platformOnly.cpuMs || !nc.emptyProgram.cpuMs) return "";
  const T = nc.k8s.cpuMs.median;
  const E = nc.emptyProgram.cpuMs.median;
  const P = nc.platformOnly.cpuMs.median;
  const resK8s = Number(resources(nc.k8s));
  const resPlatform = Number(resources(nc.platformOnly));
  const apiK8s = nc.k8s.samples.flatMap((x) => (x.api ? [x.api] : []));
  const apiMs = median(apiK8s.map((a) => a.serverSeconds)) * 1000;
  const pluginMs = r.pluginStartMs.median;
  const firstVerbs = Object.entries(apiK8s[0]?.byVerb ?? {})
    .map(([verb, n]) => `${n} ${verb}`)
    .join(", ");
  const ordered = E <= P && P <= T;
  return (
    `Where a no-change \`up\` of the kubernetes stack goes, by the CPU time of its process tree (${s1(T)} ` +
    `median; the wall time above is that plus waiting for the two cores other jobs shared): the engine's ` +
    `fixed cost (CLI, Node.js language host, a program loading @pulumi/pulumi, the state file) ${s1(E)} ` +
    `(${pct(E, T)}); the platform's ${resPlatform - 1} other resources (the program's modules, the provider ` +
    `plugin, each object's steps) ${s1(P - E)} ` +
    `more (${pct(P - E, T)}; about ${((P - E) / Math.max(1, resPlatform - 1)).toFixed(0)} ms a resource); ` +
    `the tenants' ${resK8s - resPlatform} resources (databases, roles, templates, each tenant's objects; the ` +
    `program's dynamic providers against PostgreSQL) ${s1(T - P)} more (${pct(T - P, T)}). ` +
    (ordered
      ? ""
      : "(The medians are not in the order fixed cost ≤ platform ≤ whole stack: at this load the " +
        "differences are within the run-to-run noise.) ") +
    `The provider plugin's process starts in ${pluginMs.toFixed(0)} ms (median of ${r.pluginStartMs.n}, spawn ` +
    `to its port on stdout), and the \`up\` makes ${median(apiK8s.map((a) => a.total))} requests to the API ` +
    `server (${firstVerbs} in the first round) taking ${apiMs.toFixed(0)} ms of server time: together ` +
    `${pct(pluginMs + apiMs, nc.k8s.median)} of the \`up\`'s wall time` +
    (pluginMs + apiMs < 0.1 * nc.k8s.median
      ? "; the rest is the engine's and the program's own work per resource (registering it, check and " +
        "diff through the plugin, the state file). "
      : ". ") +
    `The idle cluster served ${r.backgroundRequestsPerSecond} requests/s of the kinds counted (watches, ` +
    "leases and node status left out)."
  );
}

function upSection(r: K8sUpBenchResult): string[] {
  const c = r.cold;
  const nc = r.noChange;
  const row = (name: string, s: Sampled, vs: string): string => {
    const t = timing(s);
    return (
      `| ${name} | ${resources(s)} | ${t.median} | ${t.range} | ${cpuCell(s)} | ${sampleLoads(s)} | ` +
      `${apiCell(s)} | ${vs} |`
    );
  };
  const header = (what: string, vs: string): string[] => [
    `| ${what} | resources | wall time, median | min – max | CPU, median | load (1 min) at the samples | API requests (server time), median | ${vs} |`,
    "|---|---|---|---|---|---|---|---|",
  ];
  const changed = unexpectedChanges(r);
  const where = whereTheTimeGoes(r);
  return [
    `The prod-like kubernetes stack of \`test/e2e/kubernetes-stack.test.ts\` (testkit/prod-like-k8s-stack.ts: ` +
      `Gateway API routing, cert-manager TLS, monitoring; ${r.tenants} tenants from the Odoo-shaped fixture ` +
      `template, their databases on a local PostgreSQL given as the admin endpoint) on the k8s test cluster ` +
      `(Kubernetes ${r.kubernetes}, kwok's fake node) with the real provider plugin ${r.providerPlugin}; ` +
      `${r.pulumi}. ${r.settings.coldRounds} cold and ${r.settings.rounds} no-change rounds, every figure next ` +
      `to its baselines in the same run, interleaved; load (1/5/15 min) start ${loads(r.machine.load)}, end ` +
      `${loads(r.loadEnd)}; whole run ${s1(r.totalMs)}. Method: ${r.method}. CPU: user + system time of the ` +
      "`pulumi` process tree (CLI, language host, program, plugins) and of the benchmark's own process, " +
      "which the machine's load hardly changes; the API server's, etcd's and PostgreSQL's CPU is not in it.",
    "",
    ...header("cold `up`", "ratio to the baseline, wall (CPU)"),
    row(`kubernetes stack, ${r.tenants} tenants`, c.k8s, `**${ratios(c.k8s, c.local)}**`),
    row(
      `baseline: local-target stack, the same ${r.tenants} tenants (its own PostgreSQL cluster made too)`,
      c.local,
      "1",
    ),
    "",
    "The API requests of a cold `up` are every request the API server served while it ran, the " +
      "controllers' and kwok's reactions to the new objects included, and its CPU includes the role-sync " +
      "loop the benchmark plays beside it (kubectl and the sync script, each second); the cold local `up` " +
      "includes initdb and the start of its own PostgreSQL, where the kubernetes stack's tenants go to a " +
      "server already running.",
    "",
    ...header("no-change run", "kubernetes stack / this, wall (CPU)"),
    row(`\`up\`, kubernetes stack, ${r.tenants} tenants`, nc.k8s, "1"),
    row(
      `baseline: \`up\`, local-target stack, the same ${r.tenants} tenants`,
      nc.local,
      `**${ratios(nc.k8s, nc.local)}**`,
    ),
    row(
      "`up`, kubernetes stack with zero tenants and no admin endpoint (the platform's objects)",
      nc.platformOnly,
      ratios(nc.k8s, nc.platformOnly),
    ),
    row(
      "`up` of a program that declares nothing (the engine's fixed cost)",
      nc.emptyProgram,
      ratios(nc.k8s, nc.emptyProgram),
    ),
    row(`\`preview\`, kubernetes stack, ${r.tenants} tenants`, nc.preview, ratios(nc.k8s, nc.preview)),
    "",
    ...(where ? [where, ""] : []),
    ...(changed.length > 0
      ? [`**Runs meant as no-change that changed something:** ${changed.join("; ")}.`, ""]
      : []),
  ];
}

const CACHE_PIECES: Array<{ prefix: string; label: string; binary: string }> = [
  { prefix: "etcd-", label: "etcd", binary: "etcd" },
  {
    prefix: "kubernetes-",
    label: "Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)",
    binary: "kube-apiserver",
  },
  { prefix: "kwok-", label: "kwok", binary: "kwok" },
  {
    prefix: "pulumi-kubernetes-",
    label: "Pulumi Kubernetes provider plugin",
    binary: "pulumi-resource-kubernetes",
  },
];

/** One row per cache directory of the pieces: its build-seconds, or "not recorded". */
function buildRows(cacheRoot: string, repoRoot: string): string[] {
  const dirs = fs.existsSync(cacheRoot) ? fs.readdirSync(cacheRoot).sort() : [];
  const rows: string[] = [];
  for (const piece of CACHE_PIECES) {
    const linked = (() => {
      try {
        return path.dirname(
          path.dirname(fs.realpathSync(path.join(repoRoot, ".tools", "k8s-bin", piece.binary))),
        );
      } catch {
        return "";
      }
    })();
    for (const d of dirs.filter((x) => x.startsWith(piece.prefix) && !x.includes(".tmp."))) {
      const dir = path.join(cacheRoot, d);
      if (!fs.existsSync(path.join(dir, ".complete"))) continue;
      const file = path.join(dir, "build-seconds");
      const recorded = fs.existsSync(file);
      const seconds = recorded ? `${fs.readFileSync(file, "utf8").trim()} s` : "not recorded";
      const written = recorded
        ? fs
            .statSync(file)
            .mtime.toISOString()
            .replace(/\.\d+Z$/, "Z")
        : "–";
      const current = linked === dir ? " (linked in .tools/k8s-bin)" : "";
      rows.push(`| ${piece.label} | \`${d}\`${current} | ${seconds} | ${written} |`);
    }
  }
  return rows;
}

function buildSection(cacheRoot: string, repoRoot: string): string[] {
  const rows = buildRows(cacheRoot, repoRoot);
  return [
    "### Building the pieces",
    "",
    "scripts/ensure-k8s-tools.sh and scripts/ensure-pulumi-kubernetes.sh build them from their Go modules once " +
      "per machine into versioned cache directories and write each build's duration into the directory's " +
      "`build-seconds` (read here, not measured by this benchmark: a rebuild takes 20+ minutes of both cores):",
    "",
    "| piece | cache directory | build time | written |",
    "|---|---|---|---|",
    ...(rows.length > 0 ? rows : ["| (no cache directory found) | – | – | – |"]),
    "",
    "Measured once, on 2026-12-07, with modules already in the module cache on the project's two-core machine " +
      "shared with other jobs (load average 10–17): etcd v3.6.4 103 s, Kubernetes v1.34.2 391 s (kube-apiserver " +
      "318 s, then kube-controller-manager 53 s, kube-scheduler 3 s and kubectl 17 s, which reuse most of its " +
      "compiled packages) and kwok v0.7.0 145 s with an empty Go build cache; the provider plugin " +
      "(provider/v4, 4.24.0-dev) 533 s cold and 303 s when rebuilt with the Go build cache warm (after a change " +
      "of its build script, which is part of its cache key). Once built, the scripts only link (about 40 ms).",
    "",
  ];
}

/** The whole section: the `up` figures of the result file, the build times of this machine's caches. */
export function k8sUpSection(r: K8sUpBenchResult, cacheRoot: string, repoRoot: string): string[] {
  return [K8S_UP_HEADING, "", ...upSection(r), ...buildSection(cacheRoot, repoRoot)];
}
