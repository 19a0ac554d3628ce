/**
 * `node bin/infra/automation/disaster-recovery.js --stack NAME`: rebuilds a local stack's
 * PostgreSQL cluster from its pgBackRest repository after the data directory was lost (see
 * docs/operations/disaster-recovery.md).
 *
 * 1. `refresh` of the cluster resources only (LocalPostgres, LocalScheduler): the provider finds
 *    the data directory gone and drops the cluster from the state. Tenant resources are not
 *    refreshed (they cannot be read while the cluster is down, and they come back with it).
 * 2. `up`: LocalPostgres is created again; `ensureCluster` sees a missing data directory and a
 *    repository holding backups, restores the newest backup and replays every archived WAL
 *    segment (lib/pg/disaster.ts), then records the backups in the registry. Everything else is
 *    unchanged, or brought back in line as on any `up`.
 * 3. Prints what happened.
 */
import { existsSync } from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { openStack } from "./workspace";

const CLUSTER_TYPES = /:(LocalPostgres|LocalScheduler)$/;

interface StateResource {
  urn: string;
  type: string;
  outputs?: Record<string, unknown>;
}

function usage(): never {
  throw new Error("usage: disaster-recovery.js --stack NAME");
}

async function main(argv: string[]): Promise<void> {
  const stackFlag = argv.indexOf("--stack");
  const stackName = stackFlag >= 0 ? argv[stackFlag + 1] : undefined;
  if (!stackName || argv.some((a, i) => a.startsWith("--") && a !== "--stack" && i !== stackFlag + 1))
    usage();
  const say = (msg: string) => console.log(`[disaster-recovery] ${msg}`);
  const stack = await openStack({ stackName });

  const state = await stack.exportStack();
  const resources = ((state.deployment as { resources?: StateResource[] }).resources ?? []).filter((r) =>
    CLUSTER_TYPES.test(r.type),
  );
  const cluster = resources.find((r) => r.type.endsWith(":LocalPostgres"));
  if (!cluster)
    throw new Error(`stack ${stackName} has no LocalPostgres cluster in its state: nothing to recover`);
  const dataDir = String(cluster.outputs?.dataDir ?? "");
  const repoPath = String(cluster.outputs?.repoPath ?? "");
  say(`stack ${stackName}: data directory ${dataDir} ${existsSync(dataDir) ? "exists" : "is MISSING"}`);
  say(`repository ${repoPath} ${existsSync(repoPath) ? "exists" : "is MISSING (nothing to restore from)"}`);

  const messages: string[] = [];
  const onEvent = (event: EngineEvent) => {
    const d = event.diagnosticEvent;
    // Only the providers' own info lines: debug diagnostics carry serialized state (secrets).
    if (!d || !["info", "warning", "error"].includes(d.severity)) return;
    const m = /(?:^|\s)((?:LocalPostgres|LocalScheduler): .*)$/s.exec(d.message.trim());
    if (m) messages.push(m[1].split("\n")[0]);
  };
  const onOutput = (out: string) => process.stdout.write(out);

  say(`refresh of ${resources.map((r) => r.type.split(":").at(-1)).join(", ")}`);
  await stack.refresh({ onOutput, target: resources.map((r) => r.urn), color: "auto" });
  say("up (the cluster is restored from the repository if its data directory is missing)");
  const result = await stack.up({ onOutput, onEvent, color: "auto" });

  say("done:");
  for (const [op, count] of Object.entries(result.summary.resourceChanges ?? {})) say(`  ${op}: ${count}`);
  const restored = messages.filter((m) => /restor|replay|WAL|backup|registry|moving/i.test(m));
  for (const m of restored) say(`  ${m}`);
  if (!messages.some((m) => m.includes("restored from backup"))) {
    say("  no restore was needed (the data directory was present); the cluster was brought up to date");
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  const message = err.message.split("\n").filter((l) => !/^\s+at /.test(l));
  console.error(message.slice(-40).join("\n"));
  process.exit(1);
});
