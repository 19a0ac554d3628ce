/**
 * A prod-like kubernetes stack (Pulumi.prod.yaml's shape: Gateway API routing, cert-manager TLS,
 * monitoring; smaller volumes) through the Automation API on the loomworks k8s test cluster — a real
 * kube-apiserver, controller manager and scheduler with kwok's fake node — and the real Pulumi
 * Kubernetes provider plugin (the ambient one of .tools/k8s-bin, on the stack's PATH only). Tenants go
 * through `kubernetes.postgres.adminEndpoint` to a local PostgreSQL 15, whose role passwords the test
 * keeps equal to the stack's Secret as the PostgreSQL pod's role-sync loop would (testkit/k8s-stack.ts:
 * kwok's pods run no process). Shows: `up` is accepted by the API server; a second `up` changes
 * nothing; a ConfigMap deleted by kubectl is found by `refresh` and put back by `up`; a password
 * rotation rolls the ERP Deployment (a new ReplicaSet) and leaves the PostgreSQL StatefulSet alone; a
 * preview-summary.js summarizes a real preview of a tenant change; a declared restore creates its Job
 * with read-only repository mounts; `destroy` leaves only the retained claims. Guide: docs/developer/k8s-test-cluster.md.
 */
import { execFile } from "node:child_process";
import { existsSync, promises as fsp, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NAMES } from "../../components/kubernetes/common";
import { restoreJobName } from "../../components/kubernetes/RestoreJob";
import { destroyCluster, type LocalClusterSpec } from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { clearStaleLocks } from "../../lib/pulumi/staleLocks";
import { throwawayClusterSpec } from "../../testkit/cluster";
import {
  k8sTestClusterDown,
  k8sTestClusterUp,
  requireK8sTools,
  type K8sTestCluster,
} from "../../testkit/k8s-test-cluster";
import { type LocalTestStack, repoRoot } from "../../testkit/local-stack";
import { PROD_LIKE_TENANTS, ProdLikeK8sStack } from "../../testkit/prod-like-k8s-stack";

const NAMESPACE = "loomworks";
const tenants = PROD_LIKE_TENANTS;

interface K8sObject {
  metadata: {
    name: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
    managedFields?: { manager: string }[];
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

let k8sStateDir: string;
let cluster: K8sTestCluster;
let pgSpec: LocalClusterSpec;
let k: ProdLikeK8sStack;
let s: LocalTestStack;
let admin: Client;

/** `pulumi up` of the stack, the role-sync loop played alongside. */
function up(): ReturnType<ProdLikeK8sStack["up"]> {
  return k.up(process.env.LOOMWORKS_E2E_LOG === "1");
}

function configure(extra: Record<string, unknown> = {}, tenantConfig: Record<string, unknown> = tenants) {
  return k.configure(extra, tenantConfig);
}

function getJson<T>(args: string[]): T {
  return JSON.parse(cluster.kubectl([...args, "-o", "json"])) as T;
}

function list(kind: string, namespace = NAMESPACE): K8sObject[] {
  return getJson<{ items: K8sObject[] }>(["get", kind, "-n", namespace]).items;
}

/** The kinds of change of each resource type in the engine events of one operation. */
function changedResources(events: EngineEvent[]): string[] {
  return events
    .flatMap((e) => (e.resourcePreEvent ? [e.resourcePreEvent.metadata] : []))
    .filter((m) => m.op !== "same" && m.op !== "read")
    .map((m) => `${m.op} ${m.type} ${m.urn.split("::").pop()}`);
}

function erpReplicaSets(): string[] {
  return list("replicasets")
    .filter((rs) => rs.metadata.ownerReferences?.some((o) => o.kind === "Deployment" && o.name === NAMES.erp))
    .map((rs) => rs.metadata.name)
    .sort();
}

/** The databases of the local server, through a session opened before the stack set its own superuser password. */
async function databases(): Promise<string[]> {
  const { rows } = await admin.query<{ datname: string }>("select datname from pg_database order by 1");
  return rows.map((r) => r.datname);
}

/** bin/infra/automation/preview-summary.js, as CI runs it, on this test's stack. */
function previewSummary(): Promise<{ code: number; stderr: string; markdown: string }> {
  const out = path.join(path.dirname(s.dir), "preview-summary.md");
  const cli = path.join(repoRoot, "bin", "infra", "automation", "preview-summary.js");
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, "--stack", s.stack.name, "--work-dir", s.dir, "--out", out],
      { env: { ...process.env, ...s.env }, maxBuffer: 16 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? -1) : 0;
        resolve({ code, stderr, markdown: existsSync(out) ? readFileSync(out, "utf8") : "" });
      },
    );
  });
}

beforeAll(async () => {
  requireK8sTools({ providerPlugin: true });
  k8sStateDir = await fsp.mkdtemp(path.join(os.tmpdir(), "loomworks-k8s-e2e-"));
  pgSpec = await throwawayClusterSpec("k8se2e", "k8se2e");
  const [started] = await Promise.all([k8sTestClusterUp(k8sStateDir), ensureCluster(pgSpec)]);
  cluster = started.cluster;
  admin = new Client({
    host: "127.0.0.1",
    port: pgSpec.port,
    user: "postgres",
    password: pgSpec.superuserPassword,
  });
  await admin.connect();
  k = await ProdLikeK8sStack.create("k8s", cluster, { namespace: NAMESPACE, postgres: pgSpec });
  s = k.local;
  await configure();
});

afterAll(async () => {
  if (s) {
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    await s.stack.destroy({ color: "never" }).catch(() => undefined);
    await fsp.rm(path.dirname(s.dir), { recursive: true, force: true });
  }
  await admin?.end().catch(() => undefined);
  if (pgSpec) await destroyCluster(pgSpec).catch(() => undefined);
  if (k8sStateDir) await k8sTestClusterDown(k8sStateDir, { purge: true });
});

describe("a prod-like kubernetes stack on a real API server", () => {
  it("comes up: every object accepted, workloads ready, tenants provisioned through the admin endpoint", async () => {
    const result = await up();
    expect(result.summary.result).toBe("succeeded");

    const erp = getJson<K8sObject>([
      "get",
      "deployment",
      "-n",
      NAMESPACE,
      NAMES.erp,
      "--show-managed-fields",
    ]);
    expect(erp.status?.readyReplicas).toBeGreaterThan(0);
    // Applied by the real provider plugin (its field manager), not by a mock.
    expect(erp.metadata.managedFields?.map((f) => f.manager)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^pulumi-kubernetes/)]),
    );
    const pg = getJson<K8sObject>(["get", "statefulset", "-n", NAMESPACE, NAMES.postgres]);
    expect(pg.status?.readyReplicas).toBe(1);
    for (const kind of ["gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"])
      expect(list(kind).length, kind).toBeGreaterThan(0);
    expect(list("certificates.cert-manager.io").length).toBeGreaterThan(0);
    expect(list("servicemonitors.monitoring.coreos.com").length).toBeGreaterThan(0);
    expect(list("prometheusrules.monitoring.coreos.com").length).toBeGreaterThan(0);
    expect(await databases()).toEqual(expect.arrayContaining(["acme", "globex"]));
  });

  it("a second preview and up change nothing", async () => {
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const events: EngineEvent[] = [];
    const preview = await s.stack.preview({ color: "never", onEvent: (e) => events.push(e) });
    expect(changedResources(events)).toEqual([]);
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
    const again = await up();
    expect(Object.keys(again.summary.resourceChanges ?? {})).toEqual(["same"]);
  });

  it("a ConfigMap deleted with kubectl is found by refresh and put back by the next up", async () => {
    const configMaps = list("configmaps")
      .map((c) => c.metadata.name)
      .filter((n) => n !== "kube-root-ca.crt");
    expect(configMaps.length).toBeGreaterThan(0);
    const victim = configMaps[0];
    cluster.kubectl(["delete", "configmap", "-n", NAMESPACE, victim]);

    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const refresh = await s.stack.refresh({ color: "never" });
    expect(refresh.summary.resourceChanges?.delete).toBe(1);
    const put = await up();
    expect(put.summary.resourceChanges?.create).toBe(1);
    expect(list("configmaps").map((c) => c.metadata.name)).toContain(victim);
  });

  it("a password rotation rolls the ERP Deployment and leaves the PostgreSQL StatefulSet alone", async () => {
    const replicaSetsBefore = erpReplicaSets();
    const pgBefore = getJson<K8sObject>(["get", "statefulset", "-n", NAMESPACE, NAMES.postgres]);
    await configure({ credentialRotation: "e2e-1" });
    expect((await up()).summary.result).toBe("succeeded");

    cluster.kubectl(["rollout", "status", "-n", NAMESPACE, `deployment/${NAMES.erp}`, "--timeout=120s"]);
    const added = erpReplicaSets().filter((rs) => !replicaSetsBefore.includes(rs));
    expect(added).toHaveLength(1);
    const pgAfter = getJson<K8sObject>(["get", "statefulset", "-n", NAMESPACE, NAMES.postgres]);
    expect(pgAfter.metadata.generation).toBe(pgBefore.metadata.generation);
    expect(pgAfter.spec?.template).toEqual(pgBefore.spec?.template);
  });

  it("preview-summary.js on a change: the tenants added and suspended, the engine's counts, nothing applied", async () => {
    const secretsBefore = list("secrets").map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`);
    await configure(
      { credentialRotation: "e2e-1" },
      {
        acme: tenants.acme,
        globex: { ...tenants.globex, state: "suspended" },
        initech: { tier: "enterprise", adminEmail: "ops@initech.example" },
      },
    );
    const run = await previewSummary();
    expect(run.code, run.stderr).toBe(0);
    const md = run.markdown;
    expect(md.split("\n")[0]).toBe("### Pulumi preview: `loomworks-hosting` / `k8s`");
    expect(md.split("#### Tenants\n\n")[1].split("\n\n")[0].split("\n")).toEqual([
      "- **added** (1): `initech` (enterprise)",
      "- **suspended** (1): `globex` (active → suspended)",
    ]);
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const engine = (await s.stack.preview({ color: "never" })).changeSummary;
    for (const op of ["create", "update", "replace", "delete"] as const)
      expect(md, op).toContain(`| ${op} | ${engine[op] ?? 0} |`);
    expect(engine.create).toBeGreaterThan(0);
    expect(md).not.toMatch(/postgres(ql)?:\/\//);
    expect(list("secrets").map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`)).toEqual(
      secretsBefore,
    );
    expect(await databases()).not.toContain("initech");
  });

  it("a declared restore creates its Job, the repositories mounted read-only", async () => {
    const target = { time: new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, "Z") };
    await configure(
      { credentialRotation: "e2e-1" },
      { ...tenants, acme: { ...tenants.acme, restore: target } },
    );
    expect((await up()).summary.result).toBe("succeeded");

    interface Mount {
      name: string;
      readOnly?: boolean;
    }
    const job = getJson<{
      spec: {
        template: {
          spec: {
            containers: { volumeMounts: Mount[] }[];
            volumes: { name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }[];
          };
        };
      };
    }>(["get", "job", "-n", NAMESPACE, restoreJobName("acme", target)]);
    const pod = job.spec.template.spec;
    const mounts = pod.containers.flatMap((c) => c.volumeMounts);
    for (const name of ["backups", "wal-archive"]) {
      expect(mounts.filter((m) => m.name === name).length, name).toBeGreaterThan(0);
      expect(
        mounts.filter((m) => m.name === name).every((m) => m.readOnly === true),
        name,
      ).toBe(true);
      expect(pod.volumes.find((v) => v.name === name)?.persistentVolumeClaim?.readOnly, name).toBe(true);
    }
  });

  it("destroy removes everything but the retained claims", async () => {
    const claimsBefore = list("persistentvolumeclaims").map((c) => c.metadata.name);
    expect(claimsBefore).toEqual(
      expect.arrayContaining([NAMES.filestore, NAMES.postgresDataClaim, NAMES.postgresWalClaim]),
    );
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const destroyed = await s.stack.destroy({ color: "never" });
    expect(destroyed.summary.result).toBe("succeeded");

    for (const kind of ["deployments", "statefulsets", "services", "cronjobs", "jobs", "secrets"])
      expect(list(kind), kind).toEqual([]);
    expect(list("httproutes.gateway.networking.k8s.io")).toEqual([]);
    expect(
      list("persistentvolumeclaims")
        .map((c) => c.metadata.name)
        .sort(),
    ).toEqual([...claimsBefore].sort());
    expect(await databases()).not.toEqual(expect.arrayContaining(["acme"]));
  });
});
