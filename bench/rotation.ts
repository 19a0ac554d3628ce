/**
 * Benchmark: credential rotation and pull-request preview summaries, on one throw-away local stack
 * (testkit/local-stack.ts: own project, file:// backend, cluster and port; two tenants copied from the
 * committed Odoo-shaped FIXTURE template, not Odoo). Each scenario runs next to its baseline, in
 * alternating order, in the same run:
 *
 *   - rotation: an `up` that changes `platform.credentialRotation` (new superuser, ERP role and both
 *     tenant role passwords, applied in place) vs a no-change `up` of the same stack. During every
 *     rotating `up`, three sessions opened before it (superuser, ERP role, a tenant role) run
 *     `SELECT 1` every 20 ms: the queries they ran and the ones that failed are recorded.
 *   - preview summary: `preview` collecting the engine's events, then summarizePreview and
 *     renderPreviewMarkdown (what infra/automation/preview-summary.ts does) vs a plain `preview`, both
 *     of the same pending change (a third tenant declared).
 *
 *   node bin/bench/rotation.js [--rounds 5]
 *
 * Writes rotation.json in bench/results/.
 */
import { promises as fs } from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { clearStaleLocks } from "../lib/pulumi/staleLocks";
import { renderPreviewMarkdown, summarizePreview } from "../lib/pulumi/previewSummary";
import { parseOdooConfig } from "../lib/odoo/config";
import { LocalTestStack, type TenantEntry } from "../testkit/local-stack";
import {
  loadNow,
  machineInfo,
  now,
  pulumiVersion,
  stats,
  writeResult,
  type Stats,
  intFlags,
  runBenchmark,
} from "./common";

const log = (msg: string): void => console.log(`[rotation] ${msg}`);

const TENANTS: Record<string, TenantEntry> = {
  acme: { tier: "pro", adminEmail: "boss@acme.example" },
  globex: { tier: "basic", adminEmail: "it@globex.example" },
};
const PENDING: Record<string, TenantEntry> = {
  ...TENANTS,
  initech: { tier: "basic", adminEmail: "it@initech.example" },
};

/** A session running `SELECT 1` every 20 ms until stopped; counts what ran and what failed. */
class QueryLoop {
  ok = 0;
  failures: string[] = [];
  private running = true;
  private done: Promise<void>;

  private constructor(private readonly client: Client) {
    this.done = this.loop();
  }

  static async start(dsn: string): Promise<QueryLoop> {
    const client = new Client({ connectionString: dsn });
    client.on("error", () => undefined);
    await client.connect();
    return new QueryLoop(client);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        await this.client.query("SELECT 1");
        this.ok++;
      } catch (err) {
        this.failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<{ ok: number; failures: string[] }> {
    this.running = false;
    await this.done;
    await this.client.end().catch(() => undefined);
    return { ok: this.ok, failures: this.failures };
  }
}

interface Dsns {
  admin: string;
  tenant: string;
  erp: string;
}

async function currentDsns(s: LocalTestStack): Promise<Dsns> {
  const outs = (await s.outputs()) as {
    postgres: { adminDsn: string; host: string; port: number };
    tenants: Record<string, { dsn: string }>;
    router: { odooConfig: string };
  };
  const conf = parseOdooConfig(await fs.readFile(outs.router.odooConfig, "utf8"));
  // The ERP role reaches the tenants' databases only (a member of each tenant role).
  const erp = `postgres://${conf.db_user}:${conf.db_password}@${outs.postgres.host}:${outs.postgres.port}/acme`;
  return { admin: outs.postgres.adminDsn, tenant: outs.tenants.acme.dsn, erp };
}

interface UpSample {
  ms: number;
  load: number;
  ok: boolean;
}

interface RotationSample extends UpSample {
  queries: number;
  failedQueries: number;
  failures: string[];
}

export interface RotationBenchResult {
  machine: ReturnType<typeof machineInfo>;
  pulumi: string;
  rounds: number;
  tenants: number;
  rotation: {
    rotatingUp: Stats & { samples: RotationSample[] };
    noChangeUp: Stats & { samples: UpSample[] };
    ratio: number;
    sessions: { queries: number; failed: number };
  };
  preview: {
    withSummary: Stats & { samplesMs: number[]; summaryMs: Stats; markdownBytes: number };
    plain: Stats & { samplesMs: number[] };
    ratio: number;
  };
  loadEnd: number[];
}

async function timedUp(s: LocalTestStack): Promise<UpSample> {
  clearStaleLocks(s.env.PULUMI_BACKEND_URL);
  const start = now();
  const r = await s.stack.up({ color: "never" });
  return { ms: now() - start, load: loadNow()[0], ok: r.summary.result === "succeeded" };
}

async function rotatingUp(s: LocalTestStack, label: string): Promise<RotationSample> {
  const dsns = await currentDsns(s);
  const loops = [
    await QueryLoop.start(dsns.admin),
    await QueryLoop.start(dsns.tenant),
    await QueryLoop.start(dsns.erp),
  ];
  await s.configure(TENANTS, { credentialRotation: label });
  const up = await timedUp(s);
  const results = await Promise.all(loops.map((l) => l.stop()));
  const failures = results.flatMap((r) => r.failures);
  return {
    ...up,
    queries: results.reduce((n, r) => n + r.ok, 0),
    failedQueries: failures.length,
    failures: [...new Set(failures)],
  };
}

async function previewRound(
  s: LocalTestStack,
  withSummary: boolean,
): Promise<{ ms: number; summaryMs: number; bytes: number }> {
  clearStaleLocks(s.env.PULUMI_BACKEND_URL);
  const events: EngineEvent[] = [];
  const start = now();
  await s.stack.preview(
    withSummary ? { color: "never", onEvent: (e) => events.push(e) } : { color: "never" },
  );
  let summaryMs = 0;
  let bytes = 0;
  if (withSummary) {
    const t = now();
    const markdown = renderPreviewMarkdown(summarizePreview(events), {
      stack: s.stack.name,
      project: "loomworks-hosting",
    });
    summaryMs = now() - t;
    bytes = Buffer.byteLength(markdown);
  }
  return { ms: now() - start, summaryMs, bytes };
}

async function main(): Promise<void> {
  const { rounds } = intFlags(process.argv.slice(2), { rounds: 5 });
  const machine = machineInfo();
  log(`load ${machine.load.join(" ")}; ${rounds} rounds`);
  const s = await LocalTestStack.create("bench-rotation");
  try {
    await s.configure(TENANTS);
    const first = await timedUp(s);
    if (!first.ok) throw new Error("the first up failed");
    log(`stack up with ${Object.keys(TENANTS).length} tenants in ${(first.ms / 1000).toFixed(1)} s`);

    const rotating: RotationSample[] = [];
    const noChange: UpSample[] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate which goes first, so a drifting machine load affects both alike.
      const order = i % 2 === 0 ? ["rotate", "same"] : ["same", "rotate"];
      for (const what of order) {
        if (what === "rotate") {
          const sample = await rotatingUp(s, `bench-${i}`);
          rotating.push(sample);
          log(
            `rotating up ${(sample.ms / 1000).toFixed(1)} s, ${sample.queries} queries, ${sample.failedQueries} failed`,
          );
        } else {
          const sample = await timedUp(s);
          noChange.push(sample);
          log(`no-change up ${(sample.ms / 1000).toFixed(1)} s`);
        }
      }
    }

    await s.configure(PENDING, { credentialRotation: `bench-${rounds - 1}` });
    const withSummary: Array<{ ms: number; summaryMs: number; bytes: number }> = [];
    const plain: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? [true, false] : [false, true];
      for (const summary of order) {
        const r = await previewRound(s, summary);
        if (summary) withSummary.push(r);
        else plain.push(r.ms);
        log(`preview ${summary ? "with summary" : "plain"} ${(r.ms / 1000).toFixed(2)} s`);
      }
    }

    const rotatingStats = stats(rotating.map((r) => r.ms));
    const noChangeStats = stats(noChange.map((r) => r.ms));
    const summaryStats = stats(withSummary.map((r) => r.ms));
    const plainStats = stats(plain);
    const result: RotationBenchResult = {
      machine,
      pulumi: pulumiVersion(),
      rounds,
      tenants: Object.keys(TENANTS).length,
      rotation: {
        rotatingUp: { ...rotatingStats, samples: rotating },
        noChangeUp: { ...noChangeStats, samples: noChange },
        ratio: rotatingStats.median / noChangeStats.median,
        sessions: {
          queries: rotating.reduce((n, r) => n + r.queries, 0),
          failed: rotating.reduce((n, r) => n + r.failedQueries, 0),
        },
      },
      preview: {
        withSummary: {
          ...summaryStats,
          samplesMs: withSummary.map((r) => r.ms),
          summaryMs: stats(withSummary.map((r) => r.summaryMs)),
          markdownBytes: withSummary[0]?.bytes ?? 0,
        },
        plain: { ...plainStats, samplesMs: plain },
        ratio: summaryStats.median / plainStats.median,
      },
      loadEnd: loadNow(),
    };
    log(`wrote ${await writeResult("rotation", result)}`);
  } finally {
    await s.dispose();
  }
}

runBenchmark(main);
