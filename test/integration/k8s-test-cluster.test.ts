/**
 * scripts/k8s-test-cluster.sh: a real control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler built from their Go modules) with kwok's fake node, in a state directory of this
 * test's own. Workloads go the whole way: a Deployment gets its ReplicaSet and a Pod that is
 * scheduled and becomes Ready, a Job's Pod completes. The binaries must be built
 * (scripts/ensure-k8s-tools.sh, run by scripts/setup.sh): without them the test fails, naming that step.
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  K8S_TEST_NODE,
  k8sTestClusterDown,
  k8sTestClusterUp,
  requireK8sTools,
  type K8sTestCluster,
} from "../../testkit/k8s-test-cluster";

const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
const NAMESPACE = "k8s-test-cluster";

let stateDir: string;
let cluster: K8sTestCluster;

interface Condition {
  type: string;
  status: string;
}
interface K8sObject {
  metadata: { name: string; ownerReferences?: { kind: string; name: string }[] };
  spec?: { nodeName?: string };
  status?: { conditions?: Condition[]; succeeded?: number; readyReplicas?: number };
}

function getJson<T>(args: string[]): T {
  return JSON.parse(cluster.kubectl([...args, "-o", "json"])) as T;
}

function conditionTrue(obj: K8sObject, type: string): boolean {
  return (obj.status?.conditions ?? []).some((c) => c.type === type && c.status === "True");
}

async function pids(): Promise<Record<string, number>> {
  const entries = await Promise.all(
    COMPONENTS.map(
      async (c) => [c, Number(await fsp.readFile(path.join(stateDir, "run", `${c}.pid`), "utf8"))] as const,
    ),
  );
  return Object.fromEntries(entries);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  requireK8sTools();
  stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), "loomworks-k8s-"));
  ({ cluster } = await k8sTestClusterUp(stateDir));
  cluster.kubectl(["create", "namespace", NAMESPACE]);
}, 600_000);

afterAll(async () => {
  if (stateDir) await k8sTestClusterDown(stateDir, { purge: true });
}, 120_000);

describe("k8s test cluster", () => {
  it("serves Kubernetes v1.34.2, and kubectl is the same release", () => {
    const version = getJson<{ serverVersion: { gitVersion: string }; clientVersion: { gitVersion: string } }>(
      ["version"],
    );
    expect(version.serverVersion.gitVersion).toBe("v1.34.2");
    expect(version.clientVersion.gitVersion).toBe("v1.34.2");
  });

  it("has the CRDs of the kinds the prod stack declares, established", () => {
    const crds = getJson<{ items: (K8sObject & { spec: { group: string } })[] }>(["get", "crd"]).items;
    const established = new Set(
      crds.filter((c) => conditionTrue(c, "Established")).map((c) => c.metadata.name),
    );
    for (const name of [
      "gateways.gateway.networking.k8s.io",
      "httproutes.gateway.networking.k8s.io",
      "certificates.cert-manager.io",
      "clusterissuers.cert-manager.io",
      "servicemonitors.monitoring.coreos.com",
      "podmonitors.monitoring.coreos.com",
      "prometheusrules.monitoring.coreos.com",
    ]) {
      expect(established, name).toContain(name);
    }
    expect(crds.every((c) => established.has(c.metadata.name))).toBe(true);
  });

  it("rolls out a Deployment: a ReplicaSet and a Pod Ready on the kwok node", () => {
    cluster.kubectl(
      ["apply", "-n", NAMESPACE, "-f", "-"],
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web" },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "registry.invalid/web:1" }] },
          },
        },
      }),
    );
    cluster.kubectl(["rollout", "status", "-n", NAMESPACE, "deployment/web", "--timeout=120s"]);

    const replicaSets = getJson<{ items: K8sObject[] }>([
      "get",
      "rs",
      "-n",
      NAMESPACE,
      "-l",
      "app=web",
    ]).items;
    expect(replicaSets).toHaveLength(1);
    expect(replicaSets[0].metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "Deployment", name: "web" }),
    ]);
    const pods = getJson<{ items: K8sObject[] }>(["get", "pods", "-n", NAMESPACE, "-l", "app=web"]).items;
    expect(pods).toHaveLength(1);
    expect(pods[0].spec?.nodeName).toBe(K8S_TEST_NODE);
    expect(conditionTrue(pods[0], "Ready")).toBe(true);
    expect(pods[0].metadata.ownerReferences?.[0]).toMatchObject({
      kind: "ReplicaSet",
      name: replicaSets[0].metadata.name,
    });
  });

  it("runs a Job to completion", () => {
    cluster.kubectl(
      ["apply", "-n", NAMESPACE, "-f", "-"],
      JSON.stringify({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "once" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: "Never",
              containers: [{ name: "once", image: "registry.invalid/once:1" }],
            },
          },
        },
      }),
    );
    cluster.kubectl(["wait", "-n", NAMESPACE, "--for=condition=Complete", "job/once", "--timeout=120s"]);
    const job = getJson<K8sObject>(["get", "job", "-n", NAMESPACE, "once"]);
    expect(job.status?.succeeded).toBe(1);
  });

  it("is left as it is by a second `up`, and `down` then `up` resumes it from etcd", async () => {
    const before = await pids();
    await k8sTestClusterUp(stateDir);
    expect(await pids()).toEqual(before);

    await k8sTestClusterDown(stateDir);
    for (const [component, pid] of Object.entries(before)) expect(alive(pid), component).toBe(false);
    await expect(fsp.stat(path.join(stateDir, "etcd"))).resolves.toBeTruthy();

    ({ cluster } = await k8sTestClusterUp(stateDir));
    const after = await pids();
    for (const component of COMPONENTS) expect(alive(after[component]), component).toBe(true);
    cluster.kubectl(["rollout", "status", "-n", NAMESPACE, "deployment/web", "--timeout=120s"]);
    const deployment = getJson<K8sObject>(["get", "deployment", "-n", NAMESPACE, "web"]);
    expect(deployment.status?.readyReplicas).toBe(1);
  }, 600_000);
});
