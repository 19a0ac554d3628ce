/**
 * The repository's link check (scripts/check-links.ts runs it; `npm run lint` and scripts/test.sh
 * run that): every relative link of every Markdown file must reach a file or directory, and its
 * `#anchor` a heading of the target; every repository path a source file cites (a comment naming
 * `docs/architecture.md#layers`, `test/unit/restore.test.ts`, `lib/restore/`) must exist, with its
 * anchor when it has one. Plain functions over file contents, so the unit test plays with a
 * made-up tree.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";

export interface LinkProblem {
  /** Repository-relative path of the file holding the link or citation. */
  file: string;
  line: number;
  message: string;
}

/** Top-level folders whose paths source files cite. */
export const CITED_ROOTS = [
  "bench",
  "components",
  "docker",
  "docs",
  "dynamic-providers",
  "infra",
  "lib",
  "scripts",
  "templates",
  "test",
  "tools",
] as const;

/** Files searched for cited paths (Markdown files have their links checked instead). */
const SOURCE_FILE = /(?:\.(?:ts|js|mjs|sh|py|yaml|yml|tmpl|sql|go)|(?:^|\/)Dockerfile[^/]*)$/;

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { text: string; line: number }[] {
  const result: { text: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, index) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker !== undefined && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) result.push({ text, line: index + 1 });
  });
  return result;
}

/** The anchors a Markdown file offers: its headings (GitHub's numbering of repeats) and `<a id>`s. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading !== undefined) {
      const slug = githubSlug(heading);
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      anchors.add(count === 0 ? slug : `${slug}-${count}`);
    }
    for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
  }
  return anchors;
}

/** Relative link targets of a Markdown file (external URLs left out), with their line numbers. */
export function markdownLinks(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  for (const { text, line } of proseLines(markdown)) {
    const withoutCode = text.replace(/`[^`]*`/g, "");
    const targets = [
      ...[...withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
      ...[...withoutCode.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/g)].map((m) => m[1]),
    ];
    for (const target of targets) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ target, line });
    }
  }
  return links;
}

/** Where a line's comment starts (a whole-line comment: 0), or -1 when it has none. */
function commentStart(line: string): number {
  if (/^\s*(?:\/\/|\/\*|\*|#|--)/.test(line)) return 0;
  const trailing = /\s(?:\/\/|#|--)\s/.exec(line);
  return trailing === null ? -1 : trailing.index;
}

/**
 * Repository paths cited in a source file: a `docs/*.md` path anywhere (with its anchor) unless
 * `docsInCommentsOnly` (test files: their strings are test data), any other path under
 * {@link CITED_ROOTS} inside a comment when it names a file (`test/unit/restore.test.ts`) or a
 * folder with its slash (`lib/restore/`).
 */
export function sourceCitations(
  text: string,
  docsInCommentsOnly = false,
): { target: string; line: number }[] {
  const roots = CITED_ROOTS.join("|");
  const citation = new RegExp(`(?<![\\w./$@{-])(?:${roots})/[\\w./-]*(?:#[\\w-]+)?`, "g");
  const found: { target: string; line: number }[] = [];
  text.split("\n").forEach((lineText, index) => {
    const comment = commentStart(lineText);
    for (const m of lineText.matchAll(citation)) {
      const target = m[0].replace(/[.-]+$/, "");
      const pathPart = target.replace(/#.*$/, "");
      const isDoc = /^docs\/.*\.md$/.test(pathPart);
      const inComment = comment !== -1 && (m.index ?? 0) >= comment;
      const namesFile = /\/$|\/[^/]*\.[a-z]+$/i.test(pathPart);
      if ((isDoc && !docsInCommentsOnly) || (inComment && (namesFile || isDoc)))
        found.push({ target, line: index + 1 });
    }
  });
  return found;
}

/** Reads a repository file; undefined when it is missing or a directory. */
export type ReadFile = (repoPath: string) => string | undefined;
/** Whether a repository path (file or directory) exists. */
export type PathExists = (repoPath: string) => boolean;

function checkTarget(
  resolved: string,
  anchor: string | undefined,
  exists: PathExists,
  read: ReadFile,
  anchorsOf: (repoPath: string) => Set<string> | undefined,
): string | undefined {
  if (resolved.startsWith("..")) return "leaves the repository";
  if (!exists(resolved)) return "names no file or directory";
  if (anchor === undefined || anchor === "") return undefined;
  if (!resolved.endsWith(".md"))
    return read(resolved) === undefined ? "has an anchor but is a directory" : undefined;
  const anchors = anchorsOf(resolved);
  return anchors?.has(anchor) === true ? undefined : `has no heading with the anchor #${anchor}`;
}

/**
 * Every problem of `files` (repository-relative paths): broken relative links in Markdown files,
 * cited paths in source files that do not exist.
 */
export function checkLinks(files: readonly string[], read: ReadFile, exists: PathExists): LinkProblem[] {
  const problems: LinkProblem[] = [];
  const anchorCache = new Map<string, Set<string> | undefined>();
  const anchorsOf = (repoPath: string): Set<string> | undefined => {
    if (!anchorCache.has(repoPath)) {
      const text = read(repoPath);
      anchorCache.set(repoPath, text === undefined ? undefined : headingAnchors(text));
    }
    return anchorCache.get(repoPath);
  };

  for (const file of files) {
    const isMarkdown = file.endsWith(".md");
    if (!isMarkdown && !SOURCE_FILE.test(file)) continue;
    const text = read(file);
    if (text === undefined) continue;
    const links = isMarkdown ? markdownLinks(text) : sourceCitations(text, file.startsWith("test/"));
    for (const { target, line } of links) {
      const hash = target.indexOf("#");
      const pathPart = decodeURI(hash === -1 ? target : target.slice(0, hash));
      const anchor = hash === -1 ? undefined : target.slice(hash + 1);
      const resolved =
        pathPart === ""
          ? file
          : isMarkdown
            ? path.posix.normalize(path.posix.join(path.posix.dirname(file), pathPart))
            : path.posix.normalize(pathPart);
      const problem = checkTarget(resolved.replace(/\/$/, ""), anchor, exists, read, anchorsOf);
      if (problem !== undefined) {
        problems.push({ file, line, message: `${isMarkdown ? "link" : "cited path"} ${target} ${problem}` });
      }
    }
  }
  return problems;
}

/** The checkout's files as git sees them (tracked and new, ignored ones left out). */
export function repositoryFiles(root: string): string[] {
  const out = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return out.split("\0").filter((f) => f !== "" && existsSync(path.join(root, f)));
}

/** checkLinks over the checkout at `root`. */
export function checkRepository(root: string): LinkProblem[] {
  const read: ReadFile = (repoPath) => {
    const full = path.join(root, repoPath);
    return existsSync(full) && statSync(full).isFile() ? readFileSync(full, "utf8") : undefined;
  };
  return checkLinks(repositoryFiles(root), read, (repoPath) => existsSync(path.join(root, repoPath)));
}
