/**
 * The ops image (docker/ops/Dockerfile) and its pgBackRest wrapper, offline: the Dockerfile through
 * dockerfile-utils and the project rules (test/helpers/dockerfile-lint.ts), its layout against
 * OPS_IMAGE (what the CronJobs and restore Jobs run), the build context, and the wrapper through
 * shellcheck and with a stand-in kubectl (arguments passed through, exit code kept).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OPS_IMAGE } from "../../components/kubernetes/OpsJobs";
import { RUNTIME_FILE_DIRS } from "../../lib/templates/render";
import {
  lastOf,
  lintProblems,
  missingCopySources,
  parseDockerfile,
  runnableStageProblems,
  verifiedDownloads,
  type Stage,
} from "../helpers/dockerfile-lint";
import { repoRoot } from "../../testkit/repo";
import { requireTool } from "../helpers/tools";

const DOCKERFILE = path.join(repoRoot, "docker", "ops", "Dockerfile");
const WRAPPER = path.join(repoRoot, "docker", "ops", "pgbackrest-in-postgres-pod.sh");
const text = readFileSync(DOCKERFILE, "utf8");
const { stages } = parseDockerfile(text);
const stage = (name: string) => stages.find((s) => s.name === name) as Stage;
const runs = (s: Stage) =>
  s.instructions
    .filter((i) => i.keyword === "RUN")
    .map((i) => i.args)
    .join("\n");

describe("ops image Dockerfile", () => {
  it("passes dockerfile-utils and the project rules", () => {
    expect(lintProblems(DOCKERFILE)).toEqual([]);
  });

  it("builds the TypeScript in a node:20-bookworm stage and keeps only production modules", () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=node:20-bookworm$/m);
    expect(stage("build").from).toBe("${NODE_IMAGE}");
    expect(runs(stage("build"))).toContain("npm ci");
    expect(runs(stage("build"))).toContain("npx tsc -p tsconfig.json");
    expect(runs(stage("production-modules"))).toMatch(/npm ci --omit=dev/);
    const copies = stage("runtime")
      .instructions.filter((i) => i.keyword === "COPY")
      .map((i) => i.args);
    expect(copies).toContain("--from=production-modules /src/node_modules ./node_modules");
    expect(copies).toContain("--from=build /src/bin ./bin");
    expect(copies).toContain(
      `--chmod=0755 docker/ops/pgbackrest-in-postgres-pod.sh ${OPS_IMAGE.pgbackrestWrapper}`,
    );
  });

  it("copies every directory the program reads at run time next to its bin/ (templates, SQL)", () => {
    const copies = stage("runtime")
      .instructions.filter((i) => i.keyword === "COPY")
      .map((i) => i.args);
    const dirs = Object.keys(RUNTIME_FILE_DIRS);
    expect(dirs).toEqual(expect.arrayContaining(["templates", "sql"]));
    // next to ./bin: compiled, lib/templates/render.ts runs from bin/lib/templates and looks three folders up
    for (const dir of dirs) expect(copies, dir).toContain(`${dir}/ ./${dir}/`);
  });

  it("runs as the non-root postgres user under tini, in OPS_IMAGE's working directory", () => {
    expect(runnableStageProblems(stages, ["runtime"])).toEqual([]);
    const runtime = stage("runtime");
    expect(runtime.from).toBe("${POSTGRES_IMAGE}");
    expect(text).toMatch(/^ARG POSTGRES_IMAGE=postgres:15-bookworm$/m);
    expect(lastOf(runtime, "USER")?.args).toBe(`${OPS_IMAGE.uid}:${OPS_IMAGE.gid}`);
    expect(lastOf(runtime, "WORKDIR")?.args).toBe(OPS_IMAGE.workdir);
    expect(lastOf(runtime, "ENTRYPOINT")?.args).toBe('["/usr/bin/tini", "--"]');
    expect(lastOf(runtime, "CMD")?.args).toBe(`["node", "${OPS_IMAGE.jobsScript}"]`);
  });

  it("installs pgBackRest, tini, zstd and a version-pinned kubectl from pkgs.k8s.io with a fingerprint-checked key", () => {
    expect(text).toMatch(/^ARG KUBECTL_VERSION=\d+\.\d+\.\d+-[\d.]+$/m);
    expect(text).toMatch(/^ARG KUBERNETES_APT_KEY_FINGERPRINT=[0-9A-F]{40}$/m);
    const install = runs(stage("runtime"));
    expect(install).toMatch(/pgbackrest tini zstd "kubectl=\$\{KUBECTL_VERSION\}"/);
    expect(install).toContain(
      "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/${KUBERNETES_MINOR}/deb/ /",
    );
    expect(runs(stage("kubernetes-apt-key"))).toContain("--show-keys");
  });

  it("the download rule accepts a key only with a pinned fingerprint (the exception is live)", () => {
    const sample = (fingerprint: string) =>
      [
        "FROM debian:12 AS key",
        `ARG KEY_FINGERPRINT=${fingerprint}`,
        "ADD https://example.invalid/Release.key /tmp/release.key",
        'RUN test "$(gpg --show-keys --with-colons /tmp/release.key | cut -d: -f10)" = "${KEY_FINGERPRINT}"',
      ].join("\n");
    expect(verifiedDownloads(sample("DE15B14486CD377B9E876E1A234654DA9A296436"))).toEqual([]);
    expect(verifiedDownloads(sample(""))).toEqual([
      "line 3: download /tmp/release.key is not checksum-verified",
    ]);
    expect(verifiedDownloads(sample("DE15B144"))).toHaveLength(1);
  });

  it("copies only files that exist and that its .dockerignore lets into the context", () => {
    expect(missingCopySources(text, repoRoot)).toEqual([]);
    const allowed = readFileSync(`${DOCKERFILE}.dockerignore`, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1));
    expect(allowed.length).toBeGreaterThan(0);
    const sources = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "COPY" && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((p) => !p.startsWith("--"))
          .slice(0, -1),
      );
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) expect(allowed, src).toContain(src);
  });
});

describe("pgbackrest-in-postgres-pod.sh", () => {
  const work = mkdtempSync(path.join(tmpdir(), "ops-wrapper-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("is POSIX sh and shellcheck-clean", () => {
    requireTool("shellcheck");
    expect(readFileSync(WRAPPER, "utf8").split("\n")[0]).toBe("#!/bin/sh");
    const r = spawnSync("shellcheck", ["--shell=sh", "--severity=style", WRAPPER], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  const run = (env: Record<string, string>, args: string[]) =>
    spawnSync("/bin/sh", [WRAPPER, ...args], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", ...env } });

  it("execs pgbackrest in the PostgreSQL pod with the arguments unchanged and keeps its exit code", () => {
    const bin = path.join(work, "bin");
    spawnSync("mkdir", ["-p", bin]);
    const kubectl = path.join(bin, "kubectl");
    writeFileSync(kubectl, '#!/bin/sh\nfor a in "$@"; do printf "<%s>" "$a"; done\nexit 50\n');
    chmodSync(kubectl, 0o755);
    const r = run(
      { PATH: `${bin}:/usr/bin:/bin`, LOOMWORKS_NAMESPACE: "loom", LOOMWORKS_POSTGRES_POD: "postgres-0" },
      ["--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=loomworks", "two words", "info"],
    );
    expect(r.stdout).toBe(
      "<exec><-n><loom><postgres-0><-c><postgres><-->" +
        "<pgbackrest><--config=/etc/pgbackrest/pgbackrest.conf><--stanza=loomworks><two words><info>",
    );
    expect(r.status).toBe(50); // pgBackRest's lock error code, as the jobs expect it
  });

  it("bounds pgbackrest in the pod by the Job's deadline when one is given, and refuses a malformed one", () => {
    const bin = path.join(work, "bin");
    const env = {
      PATH: `${bin}:/usr/bin:/bin`,
      LOOMWORKS_NAMESPACE: "loom",
      LOOMWORKS_POSTGRES_POD: "postgres-0",
    };
    const r = run({ ...env, LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS: "3600" }, ["--stanza=loomworks", "backup"]);
    expect(r.stdout).toBe(
      "<exec><-n><loom><postgres-0><-c><postgres><-->" +
        "<timeout><--kill-after=30><3600><pgbackrest><--stanza=loomworks><backup>",
    );
    const bad = run({ ...env, LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS: "1h" }, ["backup"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS must be whole seconds");
  });

  it("says so when kubectl is missing or the pod is not named", () => {
    const missing = run(
      { PATH: path.join(work, "empty"), LOOMWORKS_NAMESPACE: "n", LOOMWORKS_POSTGRES_POD: "p" },
      ["info"],
    );
    expect(missing.status).toBe(127);
    expect(missing.stderr).toContain("kubectl is not on PATH");
    const unnamed = run({ PATH: `${path.join(work, "bin")}:/usr/bin:/bin`, LOOMWORKS_NAMESPACE: "n" }, [
      "info",
    ]);
    expect(unnamed.status).not.toBe(0);
    expect(unnamed.stderr).toContain("LOOMWORKS_POSTGRES_POD is not set");
  });
});
