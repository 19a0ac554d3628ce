/**
 * The loopback Kubernetes control plane of scripts/k8s-test-cluster.sh, for tests: start it in a
 * state directory of the test's own, run kubectl against it, stop it.
 * Guide: docs/developer/k8s-test-cluster.md.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./repo";

export const K8S_TOOLS_BIN = path.join(repoRoot, ".tools", "k8s-bin");
const SCRIPT = path.join(repoRoot, "scripts", "k8s-test-cluster.sh");
const TOOLS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"];

/** The name of the kwok node every Pod is scheduled onto. */
export const K8S_TEST_NODE = "kwok-node-0";

/** The binaries of the cluster (and with `providerPlugin`, the Pulumi Kubernetes provider plugin) not linked yet. */
export function missingK8sTools(opts: { providerPlugin?: boolean } = {}): string[] {
  const tools = opts.providerPlugin ? [...TOOLS, "pulumi-resource-kubernetes"] : TOOLS;
  return tools.filter((tool) => !existsSync(path.join(K8S_TOOLS_BIN, tool)));
}

/**
 * Throws, naming the set-up step, unless every binary of the cluster (and with `providerPlugin`, the
 * Pulumi Kubernetes provider plugin) is built and linked.
 */
export function requireK8sTools(opts: { providerPlugin?: boolean } = {}): void {
  const missing = missingK8sTools(opts);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(", ")} not found in .tools/k8s-bin: run ./scripts/ensure-k8s-tools.sh ` +
        "(./scripts/test.sh runs it: it builds them from their Go modules, once per machine)",
    );
  }
}

export interface K8sTestCluster {
  stateDir: string;
  kubeconfig: string;
  /** kubectl against the cluster; returns stdout, throws with stderr on a non-zero exit. */
  kubectl(args: string[], input?: string): string;
}

async function runScript(args: string[]): Promise<string> {
  try {
    const { stderr } = await promisify(execFile)(SCRIPT, args, { maxBuffer: 16 * 1024 * 1024 });
    return stderr;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`scripts/k8s-test-cluster.sh ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

/** `up`: starts (or finds running) the cluster of stateDir and waits until it is ready. Returns the log. */
export async function k8sTestClusterUp(stateDir: string): Promise<{ cluster: K8sTestCluster; log: string }> {
  const log = await runScript(["up", "--state-dir", stateDir]);
  const kubeconfig = path.join(stateDir, "kubeconfig");
  const kubectl = (args: string[], input?: string): string =>
    execFileSync(path.join(K8S_TOOLS_BIN, "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
      encoding: "utf8",
      input,
      stdio: ["pipe", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  return { cluster: { stateDir, kubeconfig, kubectl }, log };
}

/** `down`: stops every process of the cluster; with purge also deletes its state directory. */
export async function k8sTestClusterDown(stateDir: string, opts: { purge?: boolean } = {}): Promise<void> {
  await runScript(["down", "--state-dir", stateDir, ...(opts.purge ? ["--purge"] : [])]);
}

/**
 * Makes the pool's Released volumes (their claim deleted, e.g. with a namespace a destroyed stack
 * retained) Available again, so the pool of 24 does not run dry over many stacks. Returns their names.
 */
export function freeReleasedVolumes(cluster: K8sTestCluster): string[] {
  const volumes = JSON.parse(cluster.kubectl(["get", "persistentvolumes", "-o", "json"])) as {
    items: { metadata: { name: string }; status?: { phase?: string } }[];
  };
  const released = volumes.items.filter((v) => v.status?.phase === "Released").map((v) => v.metadata.name);
  for (const name of released)
    cluster.kubectl([
      "patch",
      "persistentvolume",
      name,
      "--type",
      "json",
      "-p",
      '[{"op":"remove","path":"/spec/claimRef"}]',
    ]);
  return released;
}
