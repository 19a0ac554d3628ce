/**
 * Benchmark: the local router (lib/router) with a 10,000-tenant map against the same nginx
 * without it (a one-tenant configuration), in front of one STAND-IN for the ERP's HTTP port
 * (testkit/standin-upstreams.ts: answers 200 with a small JSON body; Odoo is not
 * installable here).
 *
 *   1. Throughput and latency with wrk: two routers run side by side (same binary, same template,
 *      same worker count, same upstream), one with --tenants tenants (one host name each), one
 *      with a single tenant. wrk sends the same kind of request to both: a Lua script cycles
 *      through --tenants pre-formatted `GET /web/login` requests, each with a tenant's Host header
 *      (every tenant's host for the big map; the one tenant's host, repeated, for the baseline, so
 *      wrk does the same work on both sides). Interleaved rounds, ABBA order, after a warm-up.
 *      Recorded per run: requests/s, latency percentiles (wrk's), errors; the ratio big/one.
 *   2. Reload time with the big map: applyRouter alternately adds and removes one tenant, --reloads
 *      times; recorded: render, `nginx -t`, SIGHUP until every accepting worker runs the new
 *      configuration ("reload"), and the whole call.
 *   3. Time from applyRouter returning to the added tenant's subdomain answering 200 from the
 *      upstream (requests sent back to back until one does; the attempts are counted).
 *   4. Reloads under load: wrk against the big map while it is reloaded --reloads / 2 times;
 *      wrk's errors (connect/read/write/timeout, and HTTP status >= 400) during that run.
 *
 *   node bin/bench/router.js [--tenants 10000] [--rounds 12] [--seconds 4] [--warmup-seconds 2]
 *                            [--connections 32] [--threads 2] [--reloads 10]
 *
 * About 2.5 minutes with the defaults. Needs wrk (bench/run.sh installs it). Writes
 * router.json in bench/results/ (rendered by bench/report.ts). Measures only; never asserts.
 */
import { spawn, spawnSync } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import * as path from "node:path";
import {
  applyRouter,
  nginxVersion,
  removeRouter,
  routerStatus,
  type ApplyResult,
  type RouterOptions,
  type RouterTenant,
} from "../lib/router";
import { getWithHost, startStandinHttp, type Standin } from "../testkit/standin-upstreams";
import {
  findFreePort,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  stats,
  writeResult,
  type MachineInfo,
  type Stats,
  intFlags,
  runBenchmark,
} from "./common";

export interface WrkRun {
  config: "map" | "one";
  round: number;
  requests: number;
  durationUs: number;
  rps: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** CPU time (user + system) of the router's nginx workers per request, µs. */
  nginxCpuUsPerRequest: number;
  load: number[];
}

export interface RouterBenchResult {
  machine: MachineInfo;
  loadEnd: number[];
  nginx: string;
  wrk: string;
  settings: {
    tenants: number;
    hostsInMap: number;
    rounds: number;
    seconds: number;
    warmupSeconds: number;
    connections: number;
    threads: number;
    reloads: number;
    workerProcesses: string;
  };
  method: string;
  throughput: {
    runs: WrkRun[];
    map: { rps: Stats; p50Us: Stats; p99Us: Stats; cpuUs: Stats };
    one: { rps: Stats; p50Us: Stats; p99Us: Stats; cpuUs: Stats };
    /** median rps (map) / median rps (one). */
    ratio: number;
    /** map/one per round (each round runs both). */
    pairedRatio: Stats;
    /** nginx CPU per request, median (map) / median (one). */
    cpuRatio: number;
    errors: number;
  };
  reload: {
    renderMs: Stats;
    checkMs: Stats;
    reloadMs: Stats;
    applyMs: Stats;
    samples: Array<{ renderMs: number; checkMs: number; reloadMs: number; applyMs: number; tenants: number }>;
  };
  newTenant: {
    /** applyRouter returned → first 200 from the upstream for the new tenant's host. */
    answerMs: Stats;
    attempts: number[];
  };
  underLoad: {
    reloads: number;
    seconds: number;
    run: Omit<WrkRun, "config" | "round" | "nginxCpuUsPerRequest">;
    reloadMs: number[];
  };
  goals: {
    ratio: { goal: number; value: number; met: boolean };
    reload: { goalMs: number; valueMs: number; met: boolean };
  };
  totalMs: number;
}

const WRK_SCRIPT = `
-- Loomworks router benchmark: cycles through pre-formatted requests, one Host per line of args[1].
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("GET", "/web/login", { Host = line })
  end
  i = math.random(#reqs)
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
function done(summary, latency, requests)
  io.write(string.format(
    'LOOMWORKS_JSON {"requests":%d,"durationUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
`;

interface WrkOptions {
  port: number;
  hostsFile: string;
  seconds: number;
  connections: number;
  threads: number;
  script: string;
}

function runWrk(o: WrkOptions): Promise<Omit<WrkRun, "config" | "round" | "nginxCpuUsPerRequest">> {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    "--timeout",
    "5s",
    "-s",
    o.script,
    `http://127.0.0.1:${o.port}/`,
    "--",
    o.hostsFile,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("LOOMWORKS_JSON "));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${args.join(" ")} exited ${code}:\n${out}\n${err}`));
        return;
      }
      const r = JSON.parse(line.slice("LOOMWORKS_JSON ".length)) as Omit<
        WrkRun,
        "config" | "round" | "rps" | "load" | "nginxCpuUsPerRequest"
      >;
      resolve({ ...r, rps: r.requests / (r.durationUs / 1e6), load: loadNow() });
    });
  });
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU time (user + system, µs) used so far by the router's worker processes. */
async function workersCpuUs(stateDir: string): Promise<number> {
  let ticks = 0;
  for (const pid of (await routerStatus(stateDir)).workers) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // exited meanwhile
    }
  }
  return (ticks / CLOCK_TICKS) * 1e6;
}

/** Sends GETs with this Host until the upstream answers 200; ms and attempts. */
async function untilAnswered(
  port: number,
  host: string,
  timeoutMs = 10_000,
): Promise<{ ms: number; attempts: number }> {
  const start = now();
  for (let attempts = 1; ; attempts++) {
    const res = await getWithHost(port, host, "/web/login");
    if (res.status === 200 && res.body.includes("erp-http")) return { ms: now() - start, attempts };
    if (now() - start > timeoutMs)
      throw new Error(`${host} did not answer within ${timeoutMs} ms (last ${res.status})`);
  }
}

const tenantName = (i: number): string => `tenant${String(i).padStart(5, "0")}`;

async function main(): Promise<void> {
  const {
    tenants: tenantsN,
    rounds,
    seconds,
    "warmup-seconds": warmupSeconds,
    connections,
    threads,
    reloads,
  } = intFlags(process.argv.slice(2), {
    tenants: 10_000,
    rounds: 12,
    seconds: 4,
    "warmup-seconds": 2,
    connections: 32,
    threads: 2,
    reloads: 10,
  });
  const t0 = now();
  const machine = machineInfo();
  const nginx = await nginxVersion();
  const wrkVersion = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  const wrk = `${wrkVersion.stdout ?? ""}${wrkVersion.stderr ?? ""}`
    .split("\n")
    .find((l) => l.startsWith("wrk "));
  if (!wrk) throw new Error("wrk is not installed (bench/run.sh installs it: apt-get install wrk)");
  console.log(`[router] ${nginx}, ${wrk}; ${tenantsN} tenants, ${rounds} rounds of ${seconds} s`);

  let upstream: Standin | undefined;
  const dirs: string[] = [];
  try {
    upstream = await startStandinHttp({ record: false });
    const mapDir = await makeStateDir("loomworks-bench-router-map-");
    const oneDir = await makeStateDir("loomworks-bench-router-one-");
    dirs.push(mapDir, oneDir);
    const mapPort = await findFreePort();
    const onePort = await findFreePort(mapPort + 1);
    const tenants: RouterTenant[] = Array.from({ length: tenantsN }, (_, i) => ({
      subdomain: tenantName(i),
      state: "active",
    }));
    const common = {
      domain: "localhost",
      odooHttp: `127.0.0.1:${upstream.port}`,
      odooWebsocket: `127.0.0.1:${upstream.port}`,
      workerProcesses: "auto" as const,
    };
    const mapOptions: RouterOptions = { ...common, stateDir: mapDir, port: mapPort, tenants };
    const oneOptions: RouterOptions = { ...common, stateDir: oneDir, port: onePort, tenants: [tenants[0]] };
    await applyRouter(mapOptions);
    await applyRouter(oneOptions);

    const script = path.join(mapDir, "bench.lua");
    await fs.writeFile(script, WRK_SCRIPT);
    const mapHosts = path.join(mapDir, "hosts.txt");
    const oneHosts = path.join(oneDir, "hosts.txt");
    await fs.writeFile(mapHosts, tenants.map((t) => `${t.subdomain}.localhost:${mapPort}`).join("\n") + "\n");
    await fs.writeFile(
      oneHosts,
      tenants.map(() => `${tenants[0].subdomain}.localhost:${onePort}`).join("\n") + "\n",
    );
    const wrkFor = (config: "map" | "one", secs: number): Promise<Omit<WrkRun, "config" | "round">> => {
      const dir = config === "map" ? mapDir : oneDir;
      return workersCpuUs(dir).then(async (cpuBefore) => {
        const r = await runWrk({
          port: config === "map" ? mapPort : onePort,
          hostsFile: config === "map" ? mapHosts : oneHosts,
          seconds: secs,
          connections,
          threads,
          script,
        });
        return { ...r, nginxCpuUsPerRequest: ((await workersCpuUs(dir)) - cpuBefore) / r.requests };
      });
    };

    // 1. throughput, interleaved ABBA
    console.log("[router] warm-up");
    await wrkFor("map", warmupSeconds);
    await wrkFor("one", warmupSeconds);
    const runs: WrkRun[] = [];
    for (let round = 0; round < rounds; round++) {
      const order: Array<"map" | "one"> = round % 2 === 0 ? ["map", "one"] : ["one", "map"];
      for (const config of order) {
        const r = await wrkFor(config, seconds);
        runs.push({ config, round, ...r });
        console.log(
          `[router] round ${round + 1}/${rounds} ${config}: ${r.rps.toFixed(0)} req/s, nginx ${r.nginxCpuUsPerRequest.toFixed(1)} µs CPU/request, ` +
            `p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms, errors ${Object.values(r.errors).reduce((a, b) => a + b, 0)}`,
        );
      }
    }
    const side = (config: "map" | "one"): { rps: Stats; p50Us: Stats; p99Us: Stats; cpuUs: Stats } => {
      const rs = runs.filter((r) => r.config === config);
      return {
        rps: stats(rs.map((r) => r.rps)),
        p50Us: stats(rs.map((r) => r.latencyUs.p50)),
        p99Us: stats(rs.map((r) => r.latencyUs.p99)),
        cpuUs: stats(rs.map((r) => r.nginxCpuUsPerRequest)),
      };
    };
    const mapSide = side("map");
    const oneSide = side("one");
    const paired = Array.from({ length: rounds }, (_, round) => {
      const m = runs.find((r) => r.round === round && r.config === "map")!;
      const o = runs.find((r) => r.round === round && r.config === "one")!;
      return m.rps / o.rps;
    });
    const errors = runs.reduce((sum, r) => sum + Object.values(r.errors).reduce((a, b) => a + b, 0), 0);

    // 2 + 3. reloads with the big map; the added tenant answering
    const samples: RouterBenchResult["reload"]["samples"] = [];
    const answers: Array<{ ms: number; attempts: number }> = [];
    for (let i = 0; i < reloads; i++) {
      const added = i % 2 === 0;
      const extra: RouterTenant = { subdomain: `newtenant${String(i).padStart(3, "0")}`, state: "active" };
      const next = added ? [...tenants, extra] : tenants;
      const start = now();
      const r: ApplyResult & { renderMs: number } = await applyRouter({ ...mapOptions, tenants: next });
      const applyMs = now() - start;
      samples.push({
        renderMs: r.renderMs,
        checkMs: r.checkMs,
        reloadMs: r.reloadMs,
        applyMs,
        tenants: next.length,
      });
      if (added) answers.push(await untilAnswered(mapPort, `${extra.subdomain}.localhost:${mapPort}`));
      console.log(
        `[router] reload ${i + 1}/${reloads} (${next.length} tenants): render ${r.renderMs.toFixed(0)} ms, ` +
          `nginx -t ${r.checkMs.toFixed(0)} ms, reload ${r.reloadMs.toFixed(0)} ms, applyRouter ${applyMs.toFixed(0)} ms` +
          (added ? `; new tenant answered after ${answers[answers.length - 1].ms.toFixed(1)} ms` : ""),
      );
    }

    // 4. reloads under load
    const underLoadSeconds = Math.max(6, Math.ceil(reloads / 2) + 2);
    const underLoadReloads = Math.max(1, Math.floor(reloads / 2));
    const loadRun = runWrk({
      port: mapPort,
      hostsFile: mapHosts,
      seconds: underLoadSeconds,
      connections,
      threads,
      script,
    });
    const reloadMsUnderLoad: number[] = [];
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let i = 0; i < underLoadReloads; i++) {
      const extra: RouterTenant = { subdomain: `loadtenant${i}`, state: "active" };
      const r = await applyRouter({ ...mapOptions, tenants: i % 2 === 0 ? [...tenants, extra] : tenants });
      reloadMsUnderLoad.push(r.reloadMs);
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
    const underLoad = await loadRun;
    console.log(
      `[router] under load: ${underLoadReloads} reloads, ${underLoad.rps.toFixed(0)} req/s, errors ${JSON.stringify(underLoad.errors)}`,
    );
    const status = await routerStatus(mapDir);

    const ratio = mapSide.rps.median / oneSide.rps.median;
    const reloadStats = stats(samples.map((s) => s.reloadMs));
    const result: RouterBenchResult = {
      machine,
      loadEnd: loadNow(),
      nginx,
      wrk,
      settings: {
        tenants: tenantsN,
        hostsInMap: tenantsN,
        rounds,
        seconds,
        warmupSeconds,
        connections,
        threads,
        reloads,
        workerProcesses: `auto (${status.workers.length} workers)`,
      },
      method:
        `two routers side by side (${tenantsN.toLocaleString("en")}-tenant map vs one tenant), same nginx, template and stand-in upstream; ` +
        `wrk -t${threads} -c${connections} ${seconds} s per run, requests cycling over every tenant's Host (the same ` +
        `Host repeated for the one-tenant router), ${rounds} rounds in ABBA order after a ${warmupSeconds} s warm-up of each`,
      throughput: {
        runs,
        map: mapSide,
        one: oneSide,
        ratio,
        pairedRatio: stats(paired),
        cpuRatio: mapSide.cpuUs.median / oneSide.cpuUs.median,
        errors,
      },
      reload: {
        renderMs: stats(samples.map((s) => s.renderMs)),
        checkMs: stats(samples.map((s) => s.checkMs)),
        reloadMs: reloadStats,
        applyMs: stats(samples.map((s) => s.applyMs)),
        samples,
      },
      newTenant: { answerMs: stats(answers.map((a) => a.ms)), attempts: answers.map((a) => a.attempts) },
      underLoad: {
        reloads: underLoadReloads,
        seconds: underLoadSeconds,
        run: underLoad,
        reloadMs: reloadMsUnderLoad,
      },
      goals: {
        ratio: { goal: 0.97, value: ratio, met: ratio >= 0.97 },
        reload: { goalMs: 1000, valueMs: reloadStats.max, met: reloadStats.max <= 1000 },
      },
      totalMs: now() - t0,
    };
    const file = await writeResult("router", result);
    console.log(
      `[router] ratio ${ratio.toFixed(3)} (paired median ${stats(paired).median.toFixed(3)}; nginx CPU/request ` +
        `${mapSide.cpuUs.median.toFixed(1)} vs ${oneSide.cpuUs.median.toFixed(1)} µs), reload median ` +
        `${reloadStats.median.toFixed(0)} ms (max ${reloadStats.max.toFixed(0)} ms); wrote ${file}`,
    );
  } finally {
    for (const dir of dirs) {
      await removeRouter(dir).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    }
    await upstream?.close();
  }
}

runBenchmark(main);
