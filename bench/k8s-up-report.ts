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

function upSection(r: K8sUpBenchResult): string[] {
  const c = r.cold;
  const nc = r.noChange;
  const ck = timing(c.k8s);
  const cl = timing(c.local);
  const row = (name: string, s: Sampled, vs: string): string => {
    const t = timing(s);
    return `| ${name} | ${resources(s)} | ${t.median} | ${t.range} | ${sampleLoads(s)} | ${apiCell(s)} | ${vs} |`;
  };
  const T = nc.k8s.median;
  const E = nc.emptyProgram.median;
  const P = nc.platformOnly.median;
  const resK8s = Number(resources(nc.k8s));
  const resPlatform = Number(resources(nc.platformOnly));
  const apiK8s = nc.k8s.samples.flatMap((x) => (x.api ? [x.api] : []));
  const changed = unexpectedChanges(r);
  return [
    `The prod-like kubernetes stack of \`test/e2e/kubernetes-stack.test.ts\` (testkit/prod-like-k8s-stack.ts: ` +
      `Gateway API routing, cert-manager TLS, monitoring; ${r.tenants} tenants from the Odoo-shaped fixture ` +
      `template, their databases on a local PostgreSQL given as the admin endpoint) on the k8s test cluster ` +
      `(Kubernetes ${r.kubernetes}, kwok's fake node) with the real provider plugin ${r.providerPlugin}; ` +
      `${r.pulumi}. ${r.settings.coldRounds} cold and ${r.settings.rounds} no-change rounds, every figure next ` +
      `to its baselines in the same run, interleaved; load (1/5/15 min) start ${loads(r.machine.load)}, end ` +
      `${loads(r.loadEnd)}; whole run ${s1(r.totalMs)}. Method: ${r.method}.`,
    "",
    "| cold `up` | resources | median | min – max | load (1 min) at the samples | API requests (server time), median | ratio |",
    "|---|---|---|---|---|---|---|",
    row(`kubernetes stack, ${r.tenants} tenants`, c.k8s, `**${times(c.ratio)}** the local one`),
    `| baseline: local-target stack, the same ${r.tenants} tenants (its own PostgreSQL cluster made too) | ` +
      `${resources(c.local)} | ${cl.median} | ${cl.range} | ${sampleLoads(c.local)} | – | 1 |`,
    "",
    `The kubernetes figure counts every request the API server served while the \`up\` ran (${ck.median}), ` +
      "the controllers' and kwok's reactions to the new objects included; the cold local `up` includes " +
      "initdb and the start of its own PostgreSQL, where the kubernetes stack's tenants go to a server " +
      "already running.",
    "",
    "| no-change run | resources | median | min – max | load (1 min) at the samples | API requests (server time), median | kubernetes stack / this |",
    "|---|---|---|---|---|---|---|",
    row(`\`up\`, kubernetes stack, ${r.tenants} tenants`, nc.k8s, "1"),
    row(
      `baseline: \`up\`, local-target stack, the same ${r.tenants} tenants`,
      nc.local,
      `**${times(nc.ratioToLocal)}**`,
    ),
    row(
      "`up`, kubernetes stack with zero tenants and no admin endpoint (the platform's objects)",
      nc.platformOnly,
      times(nc.ratioToPlatformOnly),
    ),
    row(
      "`up` of a program that declares nothing (the engine's fixed cost)",
      nc.emptyProgram,
      times(nc.ratioToEmptyProgram),
    ),
    row(
      `\`preview\`, kubernetes stack, ${r.tenants} tenants`,
      nc.preview,
      times(nc.k8s.median / nc.preview.median),
    ),
    "",
    `Where a no-change \`up\` of the kubernetes stack (${s1(T)}) goes, from the medians above: the engine's ` +
      `fixed cost (CLI, Node.js language host, a program loading @pulumi/pulumi, the state file) ${s1(E)} ` +
      `(${pct(E, T)}); the platform's ${resPlatform - 1} other resources with the provider plugin ` +
      `${s1(P - E)} more (${pct(P - E, T)}; about ${((P - E) / Math.max(1, resPlatform - 1)).toFixed(0)} ms ` +
      `a resource); the tenants' ${resK8s - resPlatform} resources (databases, roles, templates, each ` +
      `tenant's objects; the program's dynamic providers against PostgreSQL) ${s1(T - P)} more ` +
      `(${pct(T - P, T)}). The provider plugin's process starts in ${r.pluginStartMs.median.toFixed(0)} ms ` +
      `(median of ${r.pluginStartMs.n}, spawn to its port on stdout), and the whole \`up\` makes ` +
      `${median(apiK8s.map((a) => a.total))} requests to the API server (${Object.entries(
        apiK8s[0]?.byVerb ?? {},
      )
        .map(([verb, n]) => `${n} ${verb}`)
        .join(", ")} in the first round) taking ` +
      `${(median(apiK8s.map((a) => a.serverSeconds)) * 1000).toFixed(0)} ms of server time: neither the plugin's ` +
      "start nor API server round trips is where the time goes; it is the engine's per-resource steps " +
      "(check and diff through the plugins) and the fixed cost. The idle cluster served " +
      `${r.backgroundRequestsPerSecond} requests/s of the same kinds (watches, leases and node status left out).`,
    "",
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
