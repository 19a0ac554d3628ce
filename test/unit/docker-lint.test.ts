/**
 * Lint of the images' build files, offline: the Dockerfiles through dockerfile-utils' validator (the
 * syntax and flag checks of the Dockerfile language server) plus this project's own rules (pinned
 * and checksum-verified downloads, apt and pip hygiene, a non-root user, tini, the health check),
 * and the shell scripts through shellcheck. hadolint is not packaged for Debian 12, hence these.
 * Each project rule is also run on a bad sample, so that a rule that never fires is noticed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { validate } from "dockerfile-utils";
import { beforeAll, describe, expect, it } from "vitest";
import { renderDockerOdooConf } from "../../components/docker/config";
import { renderKubernetesOdooConfig } from "../../components/kubernetes/odooConfig";
import { kubernetesConfigSchema } from "../../infra/config/kubernetes";
import { parseOdooConfig } from "../../lib/odoo/config";
import { ERP_IMAGE } from "../../lib/odoo/image";
import {
  BAD_SAMPLES,
  PROJECT_RULES,
  imagePaths,
  imageUser,
  lastOf,
  lintProblems,
  missingCopySources,
  parseDockerfile,
  runnableStageProblems,
  type Stage,
} from "../helpers/dockerfile-lint";
import { minimalKubernetesSettings } from "../helpers/k8s-objects";
import { repoRoot } from "../../testkit/repo";
import { requireTool } from "../helpers/tools";

const ERP_DOCKERFILE = path.join(repoRoot, "docker", "Dockerfile");
const PG_DOCKERFILE = path.join(repoRoot, "docker", "postgres", "Dockerfile");
const SCRIPTS = [
  "docker/entrypoint.sh",
  "docker/postgres/initdb/10-pgbackrest-stanza.sh",
  "docker/postgres/initdb/20-loomworks-roles.sh",
  "test/helpers/standin-odoo.sh",
];
/** Scripts that need bash (arrays, `[[ ]]`), checked as bash. */
const BASH_SCRIPTS = ["docker/postgres/scripts/loomworks-sync-roles"];

describe("Dockerfile lint", () => {
  it.each([ERP_DOCKERFILE, PG_DOCKERFILE])("%s passes dockerfile-utils and the project rules", (file) => {
    expect(lintProblems(file)).toEqual([]);
  });

  it.each(Object.keys(PROJECT_RULES))("rule %s flags its bad sample", (name) => {
    expect(PROJECT_RULES[name](BAD_SAMPLES[name]).length).toBeGreaterThan(0);
  });

  it("dockerfile-utils reports unknown flags and bad instructions (the validator is live)", () => {
    const problems = validate("FROM debian:12\nCOPY --bogus=1 a b\nHEALTHCHECK --interval=1x CMD true\n");
    expect(problems.map((p) => p.message).join("\n")).toMatch(/Unknown flag: bogus/);
    expect(problems.length).toBeGreaterThanOrEqual(2);
  });

  it("the ERP image's runnable stages run as uid 101 under tini, with a health check on /web/health", () => {
    const text = readFileSync(ERP_DOCKERFILE, "utf8");
    const { stages } = parseDockerfile(text);
    expect(runnableStageProblems(stages, ["runtime", "development", "production"])).toEqual([]);
    // The bad case: a stage that switches back to root.
    const bad = parseDockerfile(`${text}\nFROM runtime AS rooted\nUSER root\n`).stages;
    expect(runnableStageProblems(bad, ["rooted"])).toEqual([
      "rooted: last USER must be a numeric non-root user (got root)",
    ]);
    const runtime = stages.find((s) => s.name === "runtime") as Stage;
    expect(lastOf(runtime, "USER")?.args).toBe(`${ERP_IMAGE.uid}:${ERP_IMAGE.gid}`);
    expect(lastOf(runtime, "HEALTHCHECK")?.args).toContain(
      `http://127.0.0.1:${ERP_IMAGE.httpPort}${ERP_IMAGE.healthPath}`,
    );
    expect(JSON.parse(lastOf(runtime, "ENTRYPOINT")?.args ?? "null")).toEqual(ERP_IMAGE.entrypoint);
    expect(lastOf(runtime, "EXPOSE")?.args).toBe(`${ERP_IMAGE.httpPort} ${ERP_IMAGE.geventPort}`);
    expect(lastOf(runtime, "VOLUME")?.args).toBe(`["${ERP_IMAGE.dataDir}"]`);
    const env = runtime.instructions
      .filter((i) => i.keyword === "ENV")
      .map((i) => i.args)
      .join(" ");
    expect(env).toContain(`LOOMWORKS_ODOO_CONF=${ERP_IMAGE.confPath}`);
    expect(env).toContain(`LOOMWORKS_IMAGE_VERSION_FILE=${ERP_IMAGE.versionFile}`);
    expect(text).toContain(`useradd --system --uid ${ERP_IMAGE.uid} --gid odoo`);
    // The default target (the last stage) is production, not development.
    expect(stages[stages.length - 1]).toMatchObject({ from: "runtime", name: "production" });
    const development = stages.find((s) => s.name === "development") as Stage;
    expect(lastOf(development, "EXPOSE")?.args).toBe(String(ERP_IMAGE.debugpyPort));
    expect(lastOf(development, "CMD")?.args).toBe('["odoo", "--dev=all"]');
  });

  it("reads the image's user from its USER line, which useradd and groupadd must create", () => {
    const text = readFileSync(ERP_DOCKERFILE, "utf8");
    expect(imageUser(text, "production")).toEqual({ uid: ERP_IMAGE.uid, gid: ERP_IMAGE.gid });
    expect(() => imageUser(`${text}\nFROM runtime AS other\nUSER 1000:1000\n`, "other")).toThrow(
      "stage other: USER 1000 is created by no useradd --uid 1000",
    );
    expect(() => imageUser(text.replace("--gid 101 odoo", "--gid 102 odoo"), "production")).toThrow(
      "stage production: group 101 is created by no groupadd --gid 101",
    );
  });

  it("pins Odoo and wkhtmltopdf with checksums and takes the addons from the `addons` build context", () => {
    const text = readFileSync(ERP_DOCKERFILE, "utf8");
    expect(text).toMatch(/^ARG ODOO_RELEASE=\d{8}$/m);
    expect(text).toMatch(/^ARG ODOO_DEB_SHA1=[0-9a-f]{40}$/m);
    expect(
      text.match(
        /ADD --checksum=sha256:[0-9a-f]{64} \\\n\s+https:\/\/github\.com\/wkhtmltopdf\/packaging\/releases\/download\/\$\{WKHTMLTOX_RELEASE\}\/wkhtmltox_\$\{WKHTMLTOX_RELEASE\}\.bookworm_(amd64|arm64)\.deb/g,
      ),
    ).toHaveLength(2);
    expect(text).toMatch(/^ARG WKHTMLTOX_RELEASE=0\.12\.6\.1-3$/m);
    expect(text).toMatch(/^FROM scratch AS addons$/m);
    expect(text).toContain("COPY --from=addons . /src/addons");
  });

  it("copies only files that exist in the build contexts; the ERP context ignores all but the entrypoint", () => {
    expect(missingCopySources(readFileSync(ERP_DOCKERFILE, "utf8"), repoRoot)).toEqual([]);
    expect(missingCopySources(readFileSync(PG_DOCKERFILE, "utf8"), path.dirname(PG_DOCKERFILE))).toEqual([]);
    expect(missingCopySources("FROM debian:12\nCOPY docker/missing.sh /x\n", repoRoot)).toEqual([
      "docker/missing.sh",
    ]);
    const ignore = readFileSync(`${ERP_DOCKERFILE}.dockerignore`, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    expect(ignore).toEqual(["*", "!docker/entrypoint.sh", "!docker/addons", "**/__pycache__"]);
  });
});

describe("the ERP image's addons, as the targets' odoo.conf names them", () => {
  const image = imagePaths(readFileSync(ERP_DOCKERFILE, "utf8"), repoRoot, "production");
  const k8sDefaults = kubernetesConfigSchema.parse(minimalKubernetesSettings("loomworks", "erp:18.0"));
  const confs: Record<string, string> = {
    "kubernetes (default addonsPath)": renderKubernetesOdooConfig({
      dbHost: "postgres",
      dbPort: 5432,
      dbUser: "loomworks_erp",
      dataDir: ERP_IMAGE.dataDir,
      addonsPath: k8sDefaults.addonsPath,
      cpu: 2,
      memoryMb: 4096,
      tenantFiles: { map: "/etc/loomworks-tenants/tenants.json", credentials: "/x/c.json" },
    }),
    docker: renderDockerOdooConf({ dbUser: "loomworks_erp", cpu: 2, memoryMb: 4096, development: false }),
  };

  it.each(Object.keys(confs))("%s: every addons_path directory exists in the image", (target) => {
    const dirs = parseOdooConfig(confs[target]).addons_path.split(",");
    expect(dirs).toContain(ERP_IMAGE.platformAddonsDir);
    expect(dirs.filter((d) => !image.has(d))).toEqual([]);
  });

  it.each(Object.keys(confs))(
    "%s: every server-wide module but Odoo's own is in an addons_path directory",
    (target) => {
      const options = parseOdooConfig(confs[target]);
      const modules = options.server_wide_modules.split(",").filter((m) => m !== "base" && m !== "web");
      expect(modules).toEqual(expect.arrayContaining(["loomworks_json_logging", "loomworks_tenants"]));
      for (const m of modules) {
        const where = options.addons_path.split(",").filter((d) => image.has(`${d}/${m}/__manifest__.py`));
        expect(where, m).toEqual([ERP_IMAGE.platformAddonsDir]);
      }
    },
  );

  it("knows what the image lacks (the check is live)", () => {
    expect(image.has("/opt/loomworks/addons")).toBe(true); // mkdir -p in the build stage
    expect(image.has(ERP_IMAGE.odooAddonsDir)).toBe(true); // the Odoo package
    expect(image.has("/mnt/extra-addons")).toBe(false);
    expect(image.has(`${ERP_IMAGE.platformAddonsDir}/loomworks_tenants/__pycache__`)).toBe(false);
    const without = readFileSync(ERP_DOCKERFILE, "utf8").replace(/^COPY docker\/addons\/.*$/m, "");
    expect(imagePaths(without, repoRoot, "production").has(ERP_IMAGE.platformAddonsDir)).toBe(false);
  });
});

describe("shell scripts", () => {
  beforeAll(() => requireTool("shellcheck"));

  it.each(SCRIPTS)("%s is POSIX sh and shellcheck-clean", (script) => {
    const file = path.join(repoRoot, script);
    expect(readFileSync(file, "utf8").split("\n")[0]).toBe("#!/bin/sh");
    const r = spawnSync("shellcheck", ["--shell=sh", "--severity=style", file], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.each(BASH_SCRIPTS)("%s is bash and shellcheck-clean", (script) => {
    const file = path.join(repoRoot, script);
    expect(readFileSync(file, "utf8").split("\n")[0]).toBe("#!/bin/bash");
    const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", file], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("shellcheck flags a broken script (the check is live)", () => {
    const r = spawnSync("shellcheck", ["--shell=sh", "-"], {
      input: "#!/bin/sh\necho $undefined_var[1]\n[[ -n x ]]\n",
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
  });
});
