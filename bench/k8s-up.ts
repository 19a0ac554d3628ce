/**
 * Benchmark: `pulumi up` of the prod-like kubernetes stack (testkit/prod-like-k8s-stack.ts, as the e2e
 * test drives it) on the loomworks k8s test cluster with the real provider plugin, next to baselines
 * measured in the same run, interleaved (the order alternates every round):
 *
 *   - cold `up` (a new stack into a new namespace; destroyed after the round) vs a cold `up` of the same
 *     tenants (same fixture template, same count) on a new LOCAL-target stack (testkit/local-stack.ts);
 *   - no-change `up` of the stack vs a no-change `up` of that local stack, vs a no-change `up` of a
 *     kubernetes stack with zero tenants and no admin endpoint (the platform's objects alone: engine,
 *     provider plugin, API server), vs a no-change `up` of a program that declares nothing (the
 *     engine's fixed cost), and vs a `pulumi preview` of the stack.
 *
 * Around every kubernetes run the API server's request counters are read (testkit/k8s-api-requests.ts):
 * the requests the run made and the server time they took. The provider plugin's process start (until
 * it prints its port) is timed on its own. Tenants' databases are made on a local PostgreSQL 15 given
 * as the admin endpoint, its role passwords kept equal to the stack's Secret (testkit/k8s-stack.ts).
 *
 *   node bin/bench/k8s-up.js [--cold-rounds 3] [--rounds 5]
 *
 * Needs the k8s test cluster's binaries and the provider plugin in .tools/k8s-bin
 * (scripts/ensure-k8s-tools.sh). Writes RESULTS_DIR/k8s-up.json.
 */
import { spawn } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { destroyCluster, type LocalClusterSpec } from "../lib/pg/cluster";
import { ensureCluster } from "../lib/pg/ensureCluster";
import { clearStaleLocks } from "../lib/pulumi/staleLocks";
import { throwawayClusterSpec } from "../testkit/cluster";
import { apiRequestCounters, apiRequestsBetween, type ApiRequestCounts } from "../testkit/k8s-api-requests";
import {
  K8S_TOOLS_BIN,
  freeReleasedVolumes,
  k8sTestClusterDown,
  k8sTestClusterUp,
  requireK8sTools,
  type K8sTestCluster,
} from "../testkit/k8s-test-cluster";
import { LocalTestStack, repoRoot } from "../testkit/local-stack";
import { PROD_LIKE_TENANTS, ProdLikeK8sStack } from "../testkit/prod-like-k8s-stack";
import {
  intFlags,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  pulumiVersion,
  runBenchmark,
  stats,
  writeResult,
  type MachineInfo,
  type Stats,
} from "./common";

const log = (msg: string): void => console.log(`[k8s-up] ${msg}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The stack of the no-change rounds (the last cold round's, kept). */
const NAMESPACE = "loomworks";
const PLATFORM_ONLY_NAMESPACE = "loomworks-platform-only";

export interface UpSample {
  ms: number;
  /**
   * CPU time (user + system) of this process and of the children it reaped meanwhile: the `pulumi` CLI
   * and everything it waited for (language host, program, plugins). Unlike `ms`, hardly changed by
   * other work on the machine; the API server's and PostgreSQL's own CPU is not in it.
   */
  cpuMs: number;
  /** 1-minute load average when the run ended. */
  load: number;
  ok: boolean;
  error?: string;
  /** Resources in the stack's state afterwards (the stack and provider resources included). */
  resources: number;
  /** The engine's summary: resources per kind of change. */
  changes: Record<string, number>;
  /** Kubernetes runs: the API server requests made while it ran. */
  api?: ApiRequestCounts;
}

export type Sampled = Stats & { samples: UpSample[]; cpuMs: Stats };

export interface K8sUpBenchResult {
  machine: MachineInfo;
  loadEnd: number[];
  pulumi: string;
  /** The provider plugin's version (`version` in its cache directory) or "unknown". */
  providerPlugin: string;
  kubernetes: string;
  tenants: number;
  settings: { coldRounds: number; rounds: number };
  method: string;
  cold: { k8s: Sampled; local: Sampled; ratio: number };
  noChange: {
    k8s: Sampled;
    local: Sampled;
    platformOnly: Sampled;
    preview: Sampled;
    /** A program that declares nothing: the engine's fixed cost. */
    emptyProgram: Sampled;
    ratioToLocal: number;
    ratioToPlatformOnly: number;
    ratioToEmptyProgram: number;
  };
  /** Milliseconds from spawning pulumi-resource-kubernetes to its port on stdout. */
  pluginStartMs: Stats & { samplesMs: number[] };
  /** Requests per second the idle cluster serves by the same count (what a run's figure includes anyway). */
  backgroundRequestsPerSecond: number;
  totalMs: number;
}

function summarize(samples: UpSample[]): Sampled {
  const ok = samples.filter((s) => s.ok);
  return { ...stats(ok.map((s) => s.ms)), cpuMs: stats(ok.map((s) => s.cpuMs)), samples };
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Milliseconds of CPU this process used, plus its reaped children's (/proc/self/stat utime, stime,
 * cutime, cstime: fields 14 to 17, counted after the command name in parentheses).
 */
function cpuMsNow(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): field n is fields[n - 3].
  const ticks = [14, 15, 16, 17].reduce((sum, n) => sum + Number(fields[n - 3]), 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** What a timed run needs of a stack. */
type TimedStack = Pick<LocalTestStack, "env" | "stack">;

async function resourceCount(s: TimedStack): Promise<number> {
  const state = await s.stack.exportStack();
  return ((state.deployment as { resources?: unknown[] }).resources ?? []).length;
}

/**
 * Times `run` (an `up` or a preview of `s`), with the API server's requests when `cluster` is given. A
 * failure is recorded, not thrown: the rounds go on.
 */
async function sample(
  s: TimedStack,
  run: () => Promise<{ changes: Record<string, number>; ok: boolean }>,
  cluster?: K8sTestCluster,
): Promise<UpSample> {
  clearStaleLocks(s.env.PULUMI_BACKEND_URL);
  const before = cluster ? apiRequestCounters(cluster) : undefined;
  const cpuBefore = cpuMsNow();
  const start = now();
  let result: { changes: Record<string, number>; ok: boolean } = { changes: {}, ok: false };
  let error: string | undefined;
  try {
    result = await run();
  } catch (err) {
    error = (err instanceof Error ? err.message : String(err)).slice(-2000);
  }
  const ms = now() - start;
  const cpuMs = cpuMsNow() - cpuBefore;
  const load = loadNow()[0];
  const api = cluster && before ? apiRequestsBetween(before, apiRequestCounters(cluster)) : undefined;
  return {
    ms,
    cpuMs,
    load,
    ok: result.ok && error === undefined,
    ...(error ? { error } : {}),
    resources: await resourceCount(s).catch(() => -1),
    changes: result.changes,
    ...(api ? { api } : {}),
  };
}

const upOf =
  (up: () => ReturnType<Stack["up"]>) =>
  async (): Promise<{ changes: Record<string, number>; ok: boolean }> => {
    const r = await up();
    return { changes: r.summary.resourceChanges ?? {}, ok: r.summary.result === "succeeded" };
  };

function describe(what: string, s: UpSample): string {
  const api = s.api ? `, ${s.api.total} API requests` : "";
  const status = s.ok ? "" : ` FAILED: ${s.error?.split("\n").slice(-3).join(" ") ?? "not succeeded"}`;
  return `${what} ${secs(s.ms)} (${s.resources} resources${api}; load ${s.load})${status}`;
}

/** Spawns the provider plugin and times it until it prints its port, `n` times. */
async function pluginStartTimes(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    times.push(
      await new Promise<number>((resolve, reject) => {
        const start = now();
        const child = spawn(path.join(K8S_TOOLS_BIN, "pulumi-resource-kubernetes"), [], {
          stdio: ["ignore", "pipe", "ignore"],
        });
        child.on("error", reject);
        child.stdout.once("data", () => {
          const ms = now() - start;
          // Reaped before the next measurement, whose CPU time (of reaped children) it would join.
          child.once("exit", () => resolve(ms));
          child.kill();
        });
      }),
    );
  }
  return times;
}

async function backgroundRate(cluster: K8sTestCluster, ms: number): Promise<number> {
  const before = apiRequestCounters(cluster);
  await new Promise((r) => setTimeout(r, ms));
  return apiRequestsBetween(before, apiRequestCounters(cluster)).total / (ms / 1000);
}

async function providerPluginVersion(): Promise<string> {
  try {
    const binary = await fs.realpath(path.join(K8S_TOOLS_BIN, "pulumi-resource-kubernetes"));
    return (await fs.readFile(path.join(path.dirname(binary), "..", "version"), "utf8")).trim();
  } catch {
    return "unknown";
  }
}

/**
 * A stack of a program that declares nothing (it loads @pulumi/pulumi, as every program does): a
 * no-change `up` of it is the engine's fixed cost — the CLI, the Node.js language host, the program's
 * process and the state file — with no resource and no provider.
 */
async function emptyProgramStack(): Promise<TimedStack & { dispose(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-bench-empty-"));
  const projectDir = path.join(dir, "project");
  const backend = path.join(dir, "pulumi-state");
  await fs.mkdir(projectDir);
  await fs.mkdir(backend);
  await fs.writeFile(
    path.join(projectDir, "Pulumi.yaml"),
    "name: bench-empty\nruntime: nodejs\nmain: index.js\n",
  );
  await fs.writeFile(path.join(projectDir, "index.js"), 'require("@pulumi/pulumi");\n');
  await fs.symlink(path.join(repoRoot, "node_modules"), path.join(projectDir, "node_modules"));
  const env = {
    PULUMI_BACKEND_URL: `file://${backend}`,
    PULUMI_CONFIG_PASSPHRASE: "bench-passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
    PATH: [path.join(repoRoot, ".tools", "bin"), process.env.PATH].join(":"),
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: "empty", workDir: projectDir },
    { envVars: env, pulumiCommand: await PulumiCommand.get({ root: path.join(repoRoot, ".tools") }) },
  );
  return {
    env,
    stack,
    dispose: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** The stacks a run leaves to clean up: disposed in the end, whatever happened. */
class Stacks {
  private readonly all = new Set<LocalTestStack>();

  track<T extends LocalTestStack | ProdLikeK8sStack>(s: T): T {
    this.all.add(s instanceof ProdLikeK8sStack ? s.local : s);
    return s;
  }

  async dispose(s: LocalTestStack): Promise<void> {
    this.all.delete(s);
    await s.dispose().catch((err: Error) => log(`disposing ${s.stack.name} failed: ${err.message}`));
  }

  async disposeAll(): Promise<void> {
    for (const s of [...this.all]) await this.dispose(s);
  }
}

interface ColdPhase {
  k8s: UpSample[];
  local: UpSample[];
  /** The last round's stacks, kept for the no-change rounds. */
  kept: { k8s: ProdLikeK8sStack; local: LocalTestStack };
}

async function coldRounds(
  rounds: number,
  cluster: K8sTestCluster,
  postgres: LocalClusterSpec,
  stacks: Stacks,
): Promise<ColdPhase> {
  const k8sSamples: UpSample[] = [];
  const localSamples: UpSample[] = [];
  let kept: Partial<ColdPhase["kept"]> = {};
  for (let i = 0; i < rounds; i++) {
    const last = i === rounds - 1;
    const order = i % 2 === 0 ? ["k8s", "local"] : ["local", "k8s"];
    for (const what of order) {
      if (what === "k8s") {
        const namespace = last ? NAMESPACE : `${NAMESPACE}-cold${i}`;
        const k = stacks.track(
          await ProdLikeK8sStack.create(`bench-k8s-cold${i}`, cluster, { namespace, postgres }),
        );
        await k.configure();
        const s = await sample(
          k.local,
          upOf(() => k.up()),
          cluster,
        );
        k8sSamples.push(s);
        log(describe(`cold up, kubernetes (round ${i + 1})`, s));
        if (last) kept = { ...kept, k8s: k };
        else {
          await stacks.dispose(k.local);
          // The destroyed stack retained its namespace with the claims: give their volumes back to the pool.
          cluster.kubectl(["delete", "namespace", namespace, "--wait=false"]);
        }
      } else {
        const s0 = stacks.track(await LocalTestStack.create(`bench-k8s-local-cold${i}`));
        await s0.configure(PROD_LIKE_TENANTS);
        const s = await sample(
          s0,
          upOf(() => s0.up()),
        );
        localSamples.push(s);
        log(describe(`cold up, local (round ${i + 1})`, s));
        if (last) kept = { ...kept, local: s0 };
        else await stacks.dispose(s0);
      }
    }
    freeReleasedVolumes(cluster);
  }
  if (!kept.k8s || !kept.local) throw new Error("no cold round ran: --cold-rounds must be at least 1");
  return { k8s: k8sSamples, local: localSamples, kept: { k8s: kept.k8s, local: kept.local } };
}

interface NoChangePhase {
  k8s: UpSample[];
  local: UpSample[];
  platformOnly: UpSample[];
  preview: UpSample[];
  emptyProgram: UpSample[];
}

async function noChangeRounds(
  rounds: number,
  cluster: K8sTestCluster,
  k8s: ProdLikeK8sStack,
  local: LocalTestStack,
  platformOnly: ProdLikeK8sStack,
  empty: TimedStack,
): Promise<NoChangePhase> {
  const out: NoChangePhase = { k8s: [], local: [], platformOnly: [], preview: [], emptyProgram: [] };
  const kinds = ["k8s", "platformOnly", "local", "emptyProgram", "preview"] as const;
  for (let i = 0; i < rounds; i++) {
    // Each kind takes each place in the order in turn.
    const order = kinds.map((_, j) => kinds[(i + j) % kinds.length]);
    for (const what of order) {
      // Nothing else runs during a no-change `up`: the role-sync loop has nothing to apply, so the
      // stack's passwords are put on the local server before the clock starts.
      if (what === "k8s" || what === "preview") await k8s.syncRoles();
      const s =
        what === "k8s"
          ? await sample(
              k8s.local,
              upOf(() => k8s.local.up()),
              cluster,
            )
          : what === "platformOnly"
            ? await sample(
                platformOnly.local,
                upOf(() => platformOnly.local.up()),
                cluster,
              )
            : what === "local"
              ? await sample(
                  local,
                  upOf(() => local.up()),
                )
              : what === "emptyProgram"
                ? await sample(
                    empty,
                    upOf(() => empty.stack.up({ color: "never" })),
                  )
                : await sample(
                    k8s.local,
                    async () => {
                      const r = await k8s.local.stack.preview({ color: "never" });
                      return { changes: r.changeSummary, ok: true };
                    },
                    cluster,
                  );
      out[what].push(s);
      log(describe(`no-change ${what === "preview" ? "preview" : "up"}, ${what} (round ${i + 1})`, s));
    }
  }
  return out;
}

async function main(): Promise<void> {
  const started = now();
  const { "cold-rounds": coldCount, rounds } = intFlags(process.argv.slice(2), {
    "cold-rounds": 3,
    rounds: 5,
  });
  requireK8sTools({ providerPlugin: true });
  const machine = machineInfo();
  log(`load ${machine.load.join(" ")}; ${coldCount} cold rounds, ${rounds} no-change rounds`);

  const clusterDir = await makeStateDir("loomworks-bench-k8s-");
  const postgres = await throwawayClusterSpec("bench-k8s", "benchk8s");
  const stacks = new Stacks();
  let disposeEmpty = async (): Promise<void> => undefined;
  try {
    const [{ cluster }] = await Promise.all([k8sTestClusterUp(clusterDir), ensureCluster(postgres)]);
    const kubernetes = JSON.parse(cluster.kubectl(["version", "-o", "json"])) as {
      serverVersion?: { gitVersion?: string };
    };
    const backgroundRequestsPerSecond = await backgroundRate(cluster, 15_000);
    const pluginStart = await pluginStartTimes(5);
    log(
      `background ${backgroundRequestsPerSecond.toFixed(2)} requests/s; plugin start ` +
        `${stats(pluginStart).median.toFixed(0)} ms`,
    );

    const cold = await coldRounds(coldCount, cluster, postgres, stacks);
    const platformOnly = stacks.track(
      await ProdLikeK8sStack.create("bench-k8s-platform-only", cluster, {
        namespace: PLATFORM_ONLY_NAMESPACE,
      }),
    );
    await platformOnly.configure({}, {});
    const first = await sample(
      platformOnly.local,
      upOf(() => platformOnly.local.up()),
      cluster,
    );
    log(describe("first up, platform only", first));
    if (!first.ok) throw new Error(`the platform-only stack did not come up: ${first.error ?? ""}`);

    const empty = await emptyProgramStack();
    disposeEmpty = empty.dispose;
    const firstEmpty = await sample(
      empty,
      upOf(() => empty.stack.up({ color: "never" })),
    );
    log(describe("first up, empty program", firstEmpty));

    const noChange = await noChangeRounds(
      rounds,
      cluster,
      cold.kept.k8s,
      cold.kept.local,
      platformOnly,
      empty,
    );

    const coldK8s = summarize(cold.k8s);
    const coldLocal = summarize(cold.local);
    const nc = {
      k8s: summarize(noChange.k8s),
      local: summarize(noChange.local),
      platformOnly: summarize(noChange.platformOnly),
      preview: summarize(noChange.preview),
      emptyProgram: summarize(noChange.emptyProgram),
    };
    const result: K8sUpBenchResult = {
      machine,
      loadEnd: loadNow(),
      pulumi: pulumiVersion(),
      providerPlugin: await providerPluginVersion(),
      kubernetes: kubernetes.serverVersion?.gitVersion ?? "unknown",
      tenants: Object.keys(PROD_LIKE_TENANTS).length,
      settings: { coldRounds: coldCount, rounds },
      method:
        "cold: a new stack per round (kubernetes: a new namespace; local: its own cluster and port), destroyed " +
        "after the round but the last; no-change: the last round's stacks, plus a kubernetes stack with zero " +
        "tenants and no admin endpoint; the order of the kinds rotates every round; durations are the " +
        "Automation API call (the CLI process, engine, program and plugins)",
      cold: { k8s: coldK8s, local: coldLocal, ratio: coldK8s.median / coldLocal.median },
      noChange: {
        ...nc,
        ratioToLocal: nc.k8s.median / nc.local.median,
        ratioToPlatformOnly: nc.k8s.median / nc.platformOnly.median,
        ratioToEmptyProgram: nc.k8s.median / nc.emptyProgram.median,
      },
      pluginStartMs: { ...stats(pluginStart), samplesMs: pluginStart },
      backgroundRequestsPerSecond: Math.round(backgroundRequestsPerSecond * 100) / 100,
      totalMs: now() - started,
    };
    log(`wrote ${await writeResult("k8s-up", result)}`);
  } finally {
    await stacks.disposeAll();
    await disposeEmpty();
    await k8sTestClusterDown(clusterDir, { purge: true }).catch((err: Error) => log(err.message));
    await destroyCluster(postgres).catch((err: Error) => log(`destroyCluster failed: ${err.message}`));
    await fs.rm(postgres.stateDir, { recursive: true, force: true });
  }
}

runBenchmark(main);
