/**
 * Lint of the images' build files, offline (shared by test/unit/docker-lint.test.ts and
 * test/unit/ops-image-lint.test.ts): dockerfile-utils' validator (the syntax and flag checks of the
 * Dockerfile language server) plus this project's own rules (pinned and verified downloads, apt and
 * pip hygiene, a non-root user, tini, the health check). Each rule has a bad sample in BAD_SAMPLES,
 * so that a rule that never fires is noticed.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { validate } from "dockerfile-utils";

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions (continuations joined, comments dropped), grouped by stage; `global` = before the first FROM. */
export function parseDockerfile(text: string): { global: Instruction[]; stages: Stage[] } {
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

export type Rule = (text: string) => string[];

/** Base images are pinned: a tag (not latest) or a digest, unless a stage, `scratch` or an ARG. */
export const pinnedBaseImages: Rule = (text) => {
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
export const aptHygiene: Rule = (text) => {
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
export const pipNoCache: Rule = (text) =>
  parseDockerfile(text)
    .stages.flatMap((s) => s.instructions)
    .filter(
      (i) => i.keyword === "RUN" && /\bpip3?\s+install\b/.test(i.args) && !/--no-cache-dir/.test(i.args),
    )
    .map((i) => `line ${i.line}: pip install without --no-cache-dir`);

/**
 * An OpenPGP key (whose file changes whenever its expiry is extended) is verified by its
 * fingerprint instead: a RUN lists it with `gpg --show-keys` and compares it with an ARG
 * `<NAME>_FINGERPRINT` of the stage whose default is a full 40-hex-digit fingerprint.
 */
function fingerprintChecked(stage: Stage, runs: string[], dest: string): boolean {
  const args = new Map(
    stage.instructions
      .filter((i) => i.keyword === "ARG")
      .map((i) => [i.args.split("=")[0], i.args.split("=")[1] ?? ""] as const),
  );
  return runs.some(
    (r) =>
      /\bgpg\b[^;&|]*--show-keys/.test(r) &&
      r.includes(dest) &&
      [...r.matchAll(/\$\{?(\w+_FINGERPRINT)\}?/g)].some((m) => /^[0-9A-F]{40}$/.test(args.get(m[1]) ?? "")),
  );
}

/** Every download is verified: ADD <url> with --checksum, or a sha*sum -c of it later in the stage; no curl|wget downloads. */
export const verifiedDownloads: Rule = (text) => {
  const problems: string[] = [];
  for (const s of parseDockerfile(text).stages) {
    const runs = s.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    for (const ins of s.instructions) {
      if (ins.keyword === "ADD" && /https?:\/\//.test(ins.args)) {
        const dest = ins.args.split(/\s+/).pop() ?? "";
        const checked = /--checksum=sha256:[0-9a-f]{64}\b/.test(ins.args);
        const verifiedLater = runs.some((r) => new RegExp(`sha(1|256)sum -c`).test(r) && r.includes(dest));
        if (!checked && !verifiedLater && !fingerprintChecked(s, runs, dest))
          problems.push(`line ${ins.line}: download ${dest} is not checksum-verified`);
      }
      if (ins.keyword === "RUN" && /\b(curl|wget)\b[^|;&]*https?:\/\//.test(ins.args))
        problems.push(`line ${ins.line}: download with curl/wget in RUN: use ADD --checksum`);
    }
  }
  return problems;
};

/** A RUN with a pipe runs under a shell with pipefail. */
export const pipefail: Rule = (text) => {
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

export const lastOf = (s: Stage, keyword: string) =>
  [...s.instructions].reverse().find((i) => i.keyword === keyword);

/** Stage `name` with the instructions of the stages it is built FROM prepended; undefined when there is none. */
export function mergedStage(stages: Stage[], name: string): Stage | undefined {
  const byName = new Map(stages.filter((s) => s.name).map((s) => [s.name as string, s]));
  const chain = (s: Stage): Stage[] => {
    const parent = byName.get(s.from);
    return parent ? [...chain(parent), s] : [s];
  };
  const stage = byName.get(name);
  return stage && { from: stage.from, name, instructions: chain(stage).flatMap((s) => s.instructions) };
}

/** The runnable stages end as a non-root numeric user, with exec-form ENTRYPOINT under tini and a HEALTHCHECK. */
export function runnableStageProblems(stages: Stage[], names: string[]): string[] {
  const problems: string[] = [];
  for (const name of names) {
    const merged = mergedStage(stages, name);
    if (!merged) {
      problems.push(`no stage ${name}`);
      continue;
    }
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

/**
 * The numeric `uid:gid` stage `name` runs as (its last USER), checked against the `useradd --uid` and
 * `groupadd --gid` lines that create that user in the image; throws when they disagree or are missing.
 */
export function imageUser(text: string, name: string): { uid: number; gid: number } {
  const merged = mergedStage(parseDockerfile(text).stages, name);
  const user = merged && /^(\d+):(\d+)$/.exec(lastOf(merged, "USER")?.args ?? "");
  if (!merged || !user) throw new Error(`stage ${name}: no numeric USER uid:gid`);
  const [uid, gid] = [Number(user[1]), Number(user[2])];
  const runs = merged.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
  if (!runs.some((r) => new RegExp(`useradd\\b[^;&|]*--uid ${uid}\\b`).test(r)))
    throw new Error(`stage ${name}: USER ${uid} is created by no useradd --uid ${uid}`);
  if (!runs.some((r) => new RegExp(`groupadd\\b[^;&|]*--gid ${gid}\\b`).test(r)))
    throw new Error(`stage ${name}: group ${gid} is created by no groupadd --gid ${gid}`);
  return { uid, gid };
}

/** COPY sources from the main build context exist in the repository. */
export function missingCopySources(text: string, contextDir: string): string[] {
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

export const PROJECT_RULES: Record<string, Rule> = {
  pinnedBaseImages,
  aptHygiene,
  pipNoCache,
  verifiedDownloads,
  pipefail,
};

export const BAD_SAMPLES: Record<string, string> = {
  pinnedBaseImages: "FROM debian\nFROM node:latest AS x\n",
  aptHygiene: "FROM debian:12\nRUN apt-get update\nRUN apt-get update && apt-get install curl\n",
  pipNoCache: "FROM python:3.12\nRUN pip install requests\n",
  verifiedDownloads:
    "FROM debian:12\nADD https://example.invalid/x.deb /x.deb\nRUN curl -fsSL https://example.invalid/y | sh\n",
  pipefail: "FROM debian:12\nRUN find / | sort\n",
};

export function lintProblems(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const syntax = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const rules = Object.entries(PROJECT_RULES).flatMap(([name, rule]) =>
    rule(text).map((p) => `${name}: ${p}`),
  );
  return [...syntax, ...rules];
}

// ---------------------------------------------------------------------------------------------
// What an image holds, as far as its Dockerfile tells: the paths its COPY instructions (from this
// repository or from earlier stages) and `mkdir -p` create, and the directories the Debian
// packages it installs from a file are known to bring. Base images count as empty.

/** Directories a package installed from a `.deb` file brings (the layout the image relies on). */
export const DEB_DIRECTORIES: Record<string, string[]> = {
  "odoo.deb": ["/usr/lib/python3/dist-packages/odoo/addons"],
};

function withParents(paths: Set<string>, p: string): void {
  for (let dir = path.posix.normalize(p); dir !== "/" && dir !== "."; dir = path.posix.dirname(dir))
    paths.add(dir);
}

/** Files and directories under `dir` (relative, posix), bytecode caches left out as .dockerignore does. */
function treeOf(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "__pycache__") continue;
    out.push(e.name);
    if (e.isDirectory()) out.push(...treeOf(path.join(dir, e.name)).map((c) => `${e.name}/${c}`));
  }
  return out;
}

/** Absolute paths present in stage `stageName` of the Dockerfile `text` (build context `contextDir`). */
export function imagePaths(text: string, contextDir: string, stageName: string): Set<string> {
  const { stages } = parseDockerfile(text);
  const byName = new Map<string, Set<string>>();
  for (const stage of stages) {
    const paths = new Set<string>(byName.get(stage.from) ?? []);
    for (const ins of stage.instructions) {
      if (ins.keyword === "COPY") {
        const from = /--from=(\S+)/.exec(ins.args)?.[1];
        const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith("--"));
        const dest = parts[parts.length - 1];
        for (const src of parts.slice(0, -1)) {
          if (from !== undefined) {
            const source = path.posix.normalize(src).replace(/\/$/, "");
            for (const p of byName.get(from) ?? []) {
              if (p === source || p.startsWith(`${source}/`))
                withParents(paths, dest + p.slice(source.length));
            }
            continue;
          }
          const local = path.join(contextDir, src);
          if (!existsSync(local)) continue;
          if (statSync(local).isDirectory()) {
            withParents(paths, dest);
            for (const rel of treeOf(local)) withParents(paths, path.posix.join(dest, rel));
          } else withParents(paths, dest.endsWith("/") ? path.posix.join(dest, path.basename(src)) : dest);
        }
      } else if (ins.keyword === "RUN") {
        for (const m of ins.args.matchAll(/mkdir\s+-p((?:\s+\/[^\s;&|]+)+)/g))
          for (const p of m[1].trim().split(/\s+/)) withParents(paths, p);
        for (const [deb, dirs] of Object.entries(DEB_DIRECTORIES)) {
          if (new RegExp(`apt-get install[^&;]*\\s\\S*/${deb.replace(".", "\\.")}\\b`).test(ins.args))
            for (const d of dirs) withParents(paths, d);
        }
      }
    }
    if (stage.name) byName.set(stage.name, paths);
  }
  const found = byName.get(stageName);
  if (!found) throw new Error(`Dockerfile has no stage ${stageName}`);
  return found;
}
