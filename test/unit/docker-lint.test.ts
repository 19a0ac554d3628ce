/**
 * Lint of the images' build files, offline: the Dockerfiles through dockerfile-utils' validator (the
 * syntax and flag checks of the Dockerfile language server) plus this project's own rules (pinned
 * and checksum-verified downloads, apt and pip hygiene, a non-root user, tini, the health check),
 * and the shell scripts through shellcheck. hadolint is not packaged for Debian 12, hence these.
 * Each project rule is also run on a bad sample, so that a rule that never fires is noticed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { ERP_IMAGE } from "../../lib/odoo/image";
import { repoRoot } from "../helpers/repo";

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

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions (continuations joined, comments dropped), grouped by stage; `global` = before the first FROM. */
function parseDockerfile(text: string): { global: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(#|$)/.test(lines[i])) continue;
    const start = i;
    let joined = lines[i];
    while (/\\\s*$/.test(joined) && i + 1 < lines.length) {
      i += 1;
      if (/^\s*#/.test(lines[i])) continue;
      joined = joined.replace(/\\\s*$/, " ") + lines[i];
    }
    const m = /^\s*(\w+)\s*(.*)$/.exec(joined);
    if (m) instructions.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: start + 1 });
  }
  const global: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: m?.[1] ?? ins.args, name: m?.[2], instructions: [] });
    } else if (stages.length === 0) global.push(ins);
    else stages[stages.length - 1].instructions.push(ins);
  }
  return { global, stages };
}

// ---------------------------------------------------------------------------------------------
// Project rules: each returns problems as "line N: ..." strings.

type Rule = (text: string) => string[];

/** Base images are pinned: a tag (not latest) or a digest, unless a stage, `scratch` or an ARG. */
const pinnedBaseImages: Rule = (text) => {
  const { global, stages } = parseDockerfile(text);
  const argDefaults = new Map(
    global.filter((g) => g.keyword === "ARG").map((g) => [g.args.split("=")[0], g.args.split("=")[1] ?? ""]),
  );
  const problems: string[] = [];
  const names = new Set<string>();
  for (const s of stages) {
    let image = s.from;
    const arg = /^\$\{?(\w+)\}?$/.exec(image);
    if (arg) image = argDefaults.get(arg[1]) ?? "";
    const ok =
      image === "scratch" ||
      names.has(image) ||
      /\$\{?\w+\}?/.test(image) ||
      /@sha256:[0-9a-f]{64}$/.test(image) ||
      (/:[\w][\w.-]*$/.test(image.split("/").pop() ?? "") && !/:latest$/.test(image));
    if (!ok) problems.push(`FROM ${s.from}: pin a tag (not latest) or a digest`);
    if (s.name) names.add(s.name);
  }
  return problems;
};

/** apt-get: update and install in one RUN, -y, --no-install-recommends, lists removed. */
const aptHygiene: Rule = (text) => {
  const problems: string[] = [];
  for (const s of parseDockerfile(text).stages) {
    for (const ins of s.instructions.filter((x) => x.keyword === "RUN")) {
      const run = ins.args;
      if (/apt-get\s+update/.test(run) && !/apt-get\s+(?:-\S+\s+)*install/.test(run))
        problems.push(`line ${ins.line}: apt-get update without install in the same RUN`);
      if (!/apt-get\s[^&;|]*install/.test(run)) continue;
      if (!/apt-get\s+update/.test(run))
        problems.push(`line ${ins.line}: apt-get install without apt-get update`);
      if (!/\s-y\b|--yes/.test(run)) problems.push(`line ${ins.line}: apt-get install without -y`);
      if (!/--no-install-recommends/.test(run))
        problems.push(`line ${ins.line}: apt-get install without --no-install-recommends`);
      if (!/rm -rf \/var\/lib\/apt\/lists\/\*/.test(run))
        problems.push(`line ${ins.line}: apt lists not removed (rm -rf /var/lib/apt/lists/*)`);
    }
  }
  return problems;
};

/** pip never keeps its cache in a layer. */
const pipNoCache: Rule = (text) =>
  parseDockerfile(text)
    .stages.flatMap((s) => s.instructions)
    .filter(
      (i) => i.keyword === "RUN" && /\bpip3?\s+install\b/.test(i.args) && !/--no-cache-dir/.test(i.args),
    )
    .map((i) => `line ${i.line}: pip install without --no-cache-dir`);

/** Every download is verified: ADD <url> with --checksum, or a sha*sum -c of it later in the stage; no curl|wget downloads. */
const verifiedDownloads: Rule = (text) => {
  const problems: string[] = [];
  for (const s of parseDockerfile(text).stages) {
    const runs = s.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    for (const ins of s.instructions) {
      if (ins.keyword === "ADD" && /https?:\/\//.test(ins.args)) {
        const dest = ins.args.split(/\s+/).pop() ?? "";
        const checked = /--checksum=sha256:[0-9a-f]{64}\b/.test(ins.args);
        const verifiedLater = runs.some((r) => new RegExp(`sha(1|256)sum -c`).test(r) && r.includes(dest));
        if (!checked && !verifiedLater)
          problems.push(`line ${ins.line}: download ${dest} is not checksum-verified`);
      }
      if (ins.keyword === "RUN" && /\b(curl|wget)\b[^|;&]*https?:\/\//.test(ins.args))
        problems.push(`line ${ins.line}: download with curl/wget in RUN: use ADD --checksum`);
    }
  }
  return problems;
};

/** A RUN with a pipe runs under a shell with pipefail. */
const pipefail: Rule = (text) => {
  const problems: string[] = [];
  for (const s of parseDockerfile(text).stages) {
    let shell = "/bin/sh -c";
    for (const ins of s.instructions) {
      if (ins.keyword === "SHELL") shell = (JSON.parse(ins.args) as string[]).join(" ");
      if (ins.keyword === "RUN" && /[^|]\|[^|]/.test(ins.args) && !/pipefail/.test(shell))
        problems.push(
          `line ${ins.line}: RUN with a pipe but no pipefail (SHELL ["/bin/bash", "-euo", "pipefail", "-c"])`,
        );
    }
  }
  return problems;
};

const lastOf = (s: Stage, keyword: string) =>
  [...s.instructions].reverse().find((i) => i.keyword === keyword);

/** The runnable stages end as a non-root numeric user, with exec-form ENTRYPOINT under tini and a HEALTHCHECK. */
function runnableStageProblems(stages: Stage[], names: string[]): string[] {
  const problems: string[] = [];
  const byName = new Map(stages.filter((s) => s.name).map((s) => [s.name as string, s]));
  const chain = (s: Stage): Stage[] => {
    const parent = byName.get(s.from);
    return parent ? [...chain(parent), s] : [s];
  };
  for (const name of names) {
    const stage = byName.get(name);
    if (!stage) {
      problems.push(`no stage ${name}`);
      continue;
    }
    const merged: Stage = { from: stage.from, instructions: chain(stage).flatMap((s) => s.instructions) };
    const user = lastOf(merged, "USER")?.args;
    if (!user || /^(root|0)(:|$)/.test(user) || !/^\d+(:\d+)?$/.test(user))
      problems.push(`${name}: last USER must be a numeric non-root user (got ${user ?? "none"})`);
    const entrypoint = lastOf(merged, "ENTRYPOINT")?.args ?? "";
    if (!entrypoint.startsWith("[") || !/tini/.test(entrypoint))
      problems.push(`${name}: ENTRYPOINT must be exec form under tini`);
    if (!lastOf(merged, "HEALTHCHECK")) problems.push(`${name}: no HEALTHCHECK`);
  }
  return problems;
}

/** COPY sources from the main build context exist in the repository. */
function missingCopySources(text: string, contextDir: string): string[] {
  return parseDockerfile(text)
    .stages.flatMap((s) => s.instructions)
    .filter(
      (i) =>
        (i.keyword === "COPY" || i.keyword === "ADD") && !/--from=/.test(i.args) && !/https?:/.test(i.args),
    )
    .flatMap((i) => {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      return parts.slice(0, -1).filter((src) => !existsSync(path.join(contextDir, src)));
    });
}

const PROJECT_RULES: Record<string, Rule> = {
  pinnedBaseImages,
  aptHygiene,
  pipNoCache,
  verifiedDownloads,
  pipefail,
};

const BAD_SAMPLES: Record<string, string> = {
  pinnedBaseImages: "FROM debian\nFROM node:latest AS x\n",
  aptHygiene: "FROM debian:12\nRUN apt-get update\nRUN apt-get update && apt-get install curl\n",
  pipNoCache: "FROM python:3.12\nRUN pip install requests\n",
  verifiedDownloads:
    "FROM debian:12\nADD https://example.invalid/x.deb /x.deb\nRUN curl -fsSL https://example.invalid/y | sh\n",
  pipefail: "FROM debian:12\nRUN find / | sort\n",
};

function lintProblems(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const syntax = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const rules = Object.entries(PROJECT_RULES).flatMap(([name, rule]) =>
    rule(text).map((p) => `${name}: ${p}`),
  );
  return [...syntax, ...rules];
}

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
    expect(lastOf(runtime, "ENTRYPOINT")?.args).toBe(
      '["/usr/bin/tini", "--", "/usr/local/bin/loomworks-entrypoint"]',
    );
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

describe("shell scripts", () => {
  const shellcheck = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });

  it("shellcheck is installed (scripts/setup.sh installs it)", () => {
    expect(shellcheck.error, "shellcheck not found: apt-get install shellcheck").toBeUndefined();
  });

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
