/**
 * The selective scratch restore: the files the scratch instance needs, copied straight out of the
 * pgBackRest repository, so that step 2 of a restore
 * (docs/architecture.md#snapshots-and-restore) costs what the restored tenant
 * weighs instead of what the cluster weighs.
 *
 * `pgbackrest restore --db-include` writes every excluded database's files as zero-filled
 * stand-ins (one create, truncate and sync per file: ~1.2 s per 3,000-file tenant). Here, from the
 * backup set's `backup.manifest`:
 *   - everything outside `base/` (global/, pg_xact/, pg_multixact/, PG_VERSION, backup_label, the
 *     configuration files...), `base/<oid>` of template0, template1, postgres (oid < 16384) and of
 *     the tenant database are restored; the other databases' files are not written at all (their
 *     `base/<oid>` directories are created EMPTY, see {@link planSelectiveRestore});
 *   - files are decompressed in bulk, one `zstd -d --output-dir-mirror` per chunk of files of one
 *     source backup directory (a `reference` names the earlier backup holding an unchanged file),
 *     as postgres; empty files are created directly;
 *   - every restored file is checked against the manifest: size, and the SHA-1 pgBackRest recorded
 *     at backup time (pgBackRest's own restore checks the same);
 *   - recovery settings go into `postgresql.auto.conf` (earlier recovery settings commented out)
 *     with `recovery.signal`, as pgBackRest writes them.
 *
 * PostgreSQL's redo copes with the absent relation files: `XLogReadBufferExtended` creates a missing
 * relation (smgrcreate in redo) and records references to pages that do not exist as invalid pages,
 * which `ignore_invalid_pages = on` tolerates at the end of recovery.
 *
 * Unsupported here (the caller falls back to `pgbackrest restore`): encrypted or non-posix
 * repositories, bundled or block-incremental files, tablespaces and symlinks, compression other
 * than zstd/none.
 */
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** PostgreSQL's first OID for user objects: databases below it are the system ones. */
export const FIRST_USER_OID = 16384;

/** Why the selective path cannot be used (the caller falls back to `pgbackrest restore`). */
export class SelectiveRestoreUnsupported extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "SelectiveRestoreUnsupported";
  }
}

// ---------------------------------------------------------------------------------------------
// backup.manifest

export type IniSections = Map<string, Map<string, string>>;

/** pgBackRest's INI: `[section]` lines and `key=value` lines (a repeated section is merged). */
export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[") && line.endsWith("]")) {
      const name = line.slice(1, -1);
      current = sections.get(name) ?? new Map<string, string>();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq <= 0) throw new SelectiveRestoreUnsupported(`manifest line ${i + 1} is not key=value`);
    current.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return sections;
}

export interface ManifestFile {
  /** Path inside the data directory, e.g. `base/16384/1259`. */
  name: string;
  size: number;
  /** SHA-1 of the file's content (absent for empty files). */
  checksum?: string;
  /** Label of the backup whose directory holds the file (the manifest's own label unless `reference`). */
  label: string;
  mode: number;
}

export interface ManifestPath {
  /** Path inside the data directory ("" for the data directory itself). */
  name: string;
  mode: number;
}

export interface BackupManifest {
  label: string;
  type: string;
  /** File extension in the repository: "zst", or "" when stored uncompressed. */
  compressExt: string;
  databases: Array<{ name: string; oid: number }>;
  files: ManifestFile[];
  paths: ManifestPath[];
  /** Reasons the selective path cannot restore this backup (empty when it can). */
  unsupported: string[];
}

const PG_DATA = "pg_data";

function json(section: string, key: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new SelectiveRestoreUnsupported(`manifest [${section}] ${key}: value is not JSON`);
  }
}

function modeOf(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !/^[0-7]{3,4}$/.test(value)) {
    throw new SelectiveRestoreUnsupported(`manifest: ${what} has an invalid mode ${JSON.stringify(value)}`);
  }
  return parseInt(value, 8);
}

function section(ini: IniSections, name: string): Map<string, string> {
  return ini.get(name) ?? new Map<string, string>();
}

/** Inside-the-data-directory name of a manifest key (`pg_data/base/1/2` → `base/1/2`; `pg_data` → ""). */
function dataName(key: string): string | undefined {
  if (key === PG_DATA) return "";
  return key.startsWith(`${PG_DATA}/`) ? key.slice(PG_DATA.length + 1) : undefined;
}

/**
 * Parses a `backup.manifest` (format 5, pgBackRest 2.x). Throws {@link SelectiveRestoreUnsupported}
 * when the text is not a manifest (e.g. encrypted); features the selective path does not handle are
 * listed in `unsupported`.
 */
export function parseBackupManifest(text: string): BackupManifest {
  if (!text.startsWith("[backrest]")) throw new SelectiveRestoreUnsupported("not a pgBackRest manifest");
  const ini = parseIni(text);
  const str = (sec: string, key: string): string | undefined => {
    const raw = section(ini, sec).get(key);
    if (raw === undefined) return undefined;
    const v = json(sec, key, raw);
    return typeof v === "string" ? v : String(v);
  };
  const format = section(ini, "backrest").get("backrest-format");
  if (format !== "5")
    throw new SelectiveRestoreUnsupported(`manifest format ${format ?? "(none)"} (expected 5)`);
  const label = str("backup", "backup-label");
  if (!label) throw new SelectiveRestoreUnsupported("manifest has no backup-label");
  const unsupported: string[] = [];

  const compress = str("backup:option", "option-compress");
  const compressType = str("backup:option", "option-compress-type") ?? (compress === "true" ? "gz" : "none");
  let compressExt = "";
  if (compressType === "zst") compressExt = "zst";
  else if (compressType !== "none") unsupported.push(`compression "${compressType}" (zstd or none only)`);

  for (const [key, raw] of section(ini, "backup:target")) {
    const target = json("backup:target", key, raw) as { type?: string };
    if (key !== PG_DATA)
      unsupported.push(`backup target ${key} (${target.type ?? "?"}): tablespaces or links`);
  }
  if (section(ini, "target:link").size > 0) unsupported.push("symlinks in the data directory");

  const databases: BackupManifest["databases"] = [];
  for (const [name, raw] of section(ini, "db")) {
    const db = json("db", name, raw) as { "db-id"?: unknown };
    const oid = Number(db["db-id"]);
    if (!Number.isInteger(oid) || oid <= 0) {
      throw new SelectiveRestoreUnsupported(`manifest [db] ${name}: no db-id`);
    }
    databases.push({ name, oid });
  }

  const fileDefaults = section(ini, "target:file:default");
  const fileMode = modeOf(
    fileDefaults.has("mode")
      ? json("target:file:default", "mode", fileDefaults.get("mode") as string)
      : "0600",
    0o600,
    "[target:file:default]",
  );
  const pathDefaults = section(ini, "target:path:default");
  const pathMode = modeOf(
    pathDefaults.has("mode")
      ? json("target:path:default", "mode", pathDefaults.get("mode") as string)
      : "0700",
    0o700,
    "[target:path:default]",
  );

  const files: ManifestFile[] = [];
  let bundled = 0;
  let blockIncremental = 0;
  for (const [key, raw] of section(ini, "target:file")) {
    const name = dataName(key);
    if (name === undefined || name === "") {
      unsupported.push(`file ${key} outside the data directory`);
      continue;
    }
    if (name.split("/").some((p) => p === "" || p === "." || p === "..")) {
      throw new SelectiveRestoreUnsupported(`manifest file ${key}: unsafe path`);
    }
    const f = json("target:file", key, raw) as Record<string, unknown>;
    if (f["bundle-id"] !== undefined) bundled++;
    if (f["bi"] !== undefined || f["bim"] !== undefined) blockIncremental++;
    const size = Number(f.size);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new SelectiveRestoreUnsupported(`manifest file ${key}: invalid size`);
    }
    const checksum = typeof f.checksum === "string" ? f.checksum : undefined;
    if (checksum !== undefined && !/^[0-9a-f]{40}$/.test(checksum)) {
      throw new SelectiveRestoreUnsupported(`manifest file ${key}: invalid checksum`);
    }
    const reference = typeof f.reference === "string" ? f.reference : label;
    if (!/^[0-9A-Za-z_-]+$/.test(reference)) {
      throw new SelectiveRestoreUnsupported(`manifest file ${key}: invalid reference`);
    }
    files.push({ name, size, checksum, label: reference, mode: modeOf(f.mode, fileMode, key) });
  }
  if (bundled > 0) unsupported.push(`${bundled} bundled files (repo1-bundle)`);
  if (blockIncremental > 0) unsupported.push(`${blockIncremental} block-incremental files (repo1-block)`);

  const paths: ManifestPath[] = [];
  for (const [key, raw] of section(ini, "target:path")) {
    const name = dataName(key);
    if (name === undefined) {
      unsupported.push(`path ${key} outside the data directory`);
      continue;
    }
    if (name !== "" && name.split("/").some((p) => p === "" || p === "." || p === "..")) {
      throw new SelectiveRestoreUnsupported(`manifest path ${key}: unsafe path`);
    }
    const p = json("target:path", key, raw) as Record<string, unknown>;
    paths.push({ name, mode: modeOf(p.mode, pathMode, key) });
  }
  if (!paths.some((p) => p.name === "")) paths.push({ name: "", mode: pathMode });
  if (!files.some((f) => f.name === "global/pg_control")) {
    throw new SelectiveRestoreUnsupported("manifest lists no global/pg_control");
  }

  return {
    label,
    type: str("backup", "backup-type") ?? "",
    compressExt,
    databases,
    files,
    paths,
    unsupported,
  };
}

// ---------------------------------------------------------------------------------------------
// the plan

/** Files pgBackRest's restore does not restore either, or that the restore writes itself. */
const NOT_RESTORED = new Set(["recovery.signal", "standby.signal", "postmaster.pid", "postmaster.opts"]);

export interface SelectivePlan {
  /** The tenant database's oid in the backup (undefined: created after it, replayed from WAL). */
  databaseOid?: number;
  /** Databases restored: the system ones and the tenant. */
  includedOids: number[];
  /** Databases whose files are left out (their `base/<oid>` is created empty). */
  excludedOids: number[];
  /** Directories to create, parents first. */
  paths: ManifestPath[];
  /** Files to restore. */
  files: ManifestFile[];
  /** How many of them are empty. */
  emptyFiles: number;
  /** Bytes of the restored files. */
  bytes: number;
  /** Files of the excluded databases (not written). */
  skippedFiles: number;
}

/** `base/<oid>` → oid (the database directory a path is in), else undefined. */
function databaseDirOid(name: string): number | undefined {
  const m = /^base\/(\d+)(?:\/|$)/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * What to restore for `database`: everything but the files of user databases other than it.
 * The excluded databases' directories are kept, EMPTY: a `CREATE DATABASE ... STRATEGY FILE_COPY`
 * replayed from WAL copies its template's directory, and PostgreSQL 15 stops recovery ("missing
 * directory") when that directory is absent after the consistency point. Everything else redo
 * writes into another database creates what it needs: relation files and the database directory
 * itself (smgrcreate → TablespaceCreateDbspace in redo, before any `pg_filenode.map` update), and
 * references to pages of absent relations are tolerated with `ignore_invalid_pages = on`.
 */
export function planSelectiveRestore(
  m: BackupManifest,
  database: string,
  opts: { emptyExcludedDirectories?: boolean; formerNames?: readonly string[] } = {},
): SelectivePlan {
  if (m.unsupported.length > 0) throw new SelectiveRestoreUnsupported(m.unsupported.join("; "));
  const keepDirs = opts.emptyExcludedDirectories ?? true;
  // The database under its name, else under a name it had when the backup was taken (a spare).
  const listed = [database, ...(opts.formerNames ?? [])].flatMap((n) =>
    m.databases.filter((d) => d.name === n),
  );
  const tenant = listed[0];
  const tenantOids = new Set(listed.map((d) => d.oid));
  const isIncluded = (oid: number): boolean => oid < FIRST_USER_OID || tenantOids.has(oid);
  const oids = new Set<number>(m.databases.map((d) => d.oid));
  for (const p of m.paths) {
    const oid = databaseDirOid(p.name);
    if (oid !== undefined) oids.add(oid);
  }
  const paths = m.paths
    .filter((p) => {
      const oid = databaseDirOid(p.name);
      // an excluded database: its directory itself, nothing below it
      return oid === undefined || isIncluded(oid) || (keepDirs && p.name === `base/${oid}`);
    })
    .sort((a, b) => a.name.split("/").length - b.name.split("/").length || a.name.localeCompare(b.name));
  const files: ManifestFile[] = [];
  let emptyFiles = 0;
  let bytes = 0;
  let skippedFiles = 0;
  for (const f of m.files) {
    const oid = databaseDirOid(f.name);
    if (oid !== undefined && !isIncluded(oid)) {
      skippedFiles++;
      continue;
    }
    if (NOT_RESTORED.has(f.name)) continue;
    files.push(f);
    bytes += f.size;
    if (f.size === 0) emptyFiles++;
  }
  const all = [...oids].sort((a, b) => a - b);
  return {
    databaseOid: tenant?.oid,
    includedOids: all.filter(isIncluded),
    excludedOids: all.filter((o) => !isIncluded(o)),
    paths,
    files,
    emptyFiles,
    bytes,
    skippedFiles,
  };
}

/** Splits files into about `parts` chunks of similar size (at most `maxPerChunk` files each). */
export function chunkFiles<T extends { size: number }>(
  files: readonly T[],
  parts: number,
  maxPerChunk = 1000,
): T[][] {
  if (files.length === 0) return [];
  const n = Math.max(1, Math.min(files.length, Math.max(parts, Math.ceil(files.length / maxPerChunk))));
  const chunks: Array<{ size: number; items: T[] }> = Array.from({ length: n }, () => ({
    size: 0,
    items: [],
  }));
  for (const f of [...files].sort((a, b) => b.size - a.size)) {
    // the lightest chunk that still has room
    let best: (typeof chunks)[number] | undefined;
    for (const c of chunks) {
      if (c.items.length < maxPerChunk && (!best || c.size < best.size)) best = c;
    }
    if (!best) {
      best = { size: 0, items: [] };
      chunks.push(best);
    }
    best.items.push(f);
    best.size += f.size;
  }
  return chunks.filter((c) => c.items.length > 0).map((c) => c.items);
}

// ---------------------------------------------------------------------------------------------
// recovery settings

/** PostgreSQL 15's recovery settings: commented out of the restored postgresql.auto.conf. */
export const RECOVERY_SETTINGS = [
  "restore_command",
  "archive_cleanup_command",
  "recovery_end_command",
  "recovery_target",
  "recovery_target_lsn",
  "recovery_target_name",
  "recovery_target_time",
  "recovery_target_xid",
  "recovery_target_inclusive",
  "recovery_target_timeline",
  "recovery_target_action",
  "recovery_min_apply_delay",
  "primary_conninfo",
  "primary_slot_name",
  "promote_trigger_file",
  "standby_mode",
  "archive_mode",
];

export interface RecoveryTarget {
  type: "lsn" | "time";
  value: string;
  /** recovery_target_inclusive = false */
  exclusive: boolean;
}

const literal = (v: string): string => {
  if (/['\\\r\n\0]/.test(v)) throw new Error(`unsafe character in a recovery setting: ${v}`);
  return `'${v}'`;
};

/**
 * The restored `postgresql.auto.conf` with earlier recovery settings commented out and the
 * restore's appended (what `pgbackrest restore --type=... --target-action=promote --archive-mode=off`
 * writes).
 */
export function recoveryAutoConf(
  existing: string,
  restoreCommand: string,
  target: RecoveryTarget,
  now = new Date(),
): string {
  const names = new RegExp(`^\\s*(${RECOVERY_SETTINGS.join("|")})\\s*=`);
  const stamp = now.toISOString();
  const kept = existing
    .split("\n")
    .map((line) =>
      names.test(line) ? `# Removed by Loomworks selective restore on ${stamp} # ${line}` : line,
    )
    .join("\n");
  const settings: Array<[string, string]> = [
    ["restore_command", literal(restoreCommand)],
    [target.type === "lsn" ? "recovery_target_lsn" : "recovery_target_time", literal(target.value)],
    ...(target.exclusive ? ([["recovery_target_inclusive", "'false'"]] as Array<[string, string]>) : []),
    ["recovery_target_action", "'promote'"],
    ["archive_mode", "'off'"],
  ];
  return (
    (kept === "" || kept.endsWith("\n") ? kept : `${kept}\n`) +
    `\n# Recovery settings generated by Loomworks selective restore on ${stamp}\n` +
    settings.map(([k, v]) => `${k} = ${v}`).join("\n") +
    "\n"
  );
}

// ---------------------------------------------------------------------------------------------
// the restore

/**
 * Decompresses `relativeFiles` (paths ending in `.zst`, relative to `cwd`, a backup directory's
 * `pg_data`) into the same paths under `dataDir`, as postgres; throws on failure. In practice one
 * `zstd -d -q --output-dir-mirror <dataDir> -- <files...>`.
 */
export type Decompress = (cwd: string, relativeFiles: string[], dataDir: string) => Promise<void>;

export interface SelectiveRestoreParams {
  /** Created here; must not exist. */
  dataDir: string;
  /** repo1-path */
  repoPath: string;
  stanza: string;
  label: string;
  database: string;
  /** Names the database had in earlier backups (lib/restore/scratch.ts ScratchRestoreOptions). */
  formerNames?: readonly string[];
  target: RecoveryTarget;
  restoreCommand: string;
  /** Gives a directory or file created by this process to postgres (no-op when not root). */
  chown: (p: string) => Promise<void>;
  decompress: Decompress;
  /** Concurrent decompressions (default: the CPU count, at most 4). */
  parallel?: number;
  /** "checksum" (size and SHA-1, default) or "size". */
  verify?: "checksum" | "size";
  /** Create the excluded databases' directories, empty (default true; see planSelectiveRestore). */
  emptyExcludedDirectories?: boolean;
}

export interface SelectiveRestoreStats {
  /** The databases in the backup set. */
  databases: Array<{ name: string; oid: number }>;
  files: number;
  emptyFiles: number;
  bytes: number;
  skippedFiles: number;
  includedOids: number[];
  excludedOids: number[];
  databaseOid?: number;
  /** Backup directories read (the set's own and the ones it references). */
  labels: string[];
  /** Decompression processes run. */
  processes: number;
  verify: "checksum" | "size";
  /** Reading the manifest, planning, checking the repository holds every file. */
  manifestMs: number;
  /** Directories, decompression, verification (overlapping), modes. */
  copyMs: number;
  /** Verification still running after the last decompression ended. */
  verifyTailMs: number;
}

/**
 * Runs `fn` over `items`, `limit` at a time. After a failure no new item starts; it settles only
 * when every started call has (so nothing still writes when it rejects), with the first error.
 */
async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  });
  await Promise.all(workers);
  if (failed) throw failed.error;
}

/** Reads and parses `<repo>/backup/<stanza>/<label>/backup.manifest` (or its `.copy`). */
export async function readBackupManifest(
  repoPath: string,
  stanza: string,
  label: string,
): Promise<BackupManifest> {
  const dir = path.join(repoPath, "backup", stanza, label);
  let firstError: unknown;
  for (const name of ["backup.manifest", "backup.manifest.copy"]) {
    try {
      const m = parseBackupManifest(await fs.readFile(path.join(dir, name), "utf8"));
      if (m.label !== label) throw new SelectiveRestoreUnsupported(`${name} is the manifest of ${m.label}`);
      return m;
    } catch (err) {
      firstError ??= err;
    }
  }
  const reason = firstError instanceof Error ? firstError.message : String(firstError);
  throw new SelectiveRestoreUnsupported(`backup ${label}: cannot read its manifest (${reason})`);
}

/** How each planned file gets into the data directory. */
interface Sources {
  /** Per backup label: files stored compressed (decompressed in bulk). */
  compressed: Map<string, ManifestFile[]>;
  /** Stored as is (an uncompressed repository, or an empty file stored raw): copied. */
  raw: Array<{ label: string; file: ManifestFile }>;
  /** Empty files the repository does not hold: created. */
  create: ManifestFile[];
}

/** Finds every planned file in the repository, one readdir per source directory. */
async function locateSources(
  files: readonly ManifestFile[],
  ext: string,
  sourceOf: (label: string) => string,
): Promise<Sources> {
  const listings = new Map<string, Set<string>>();
  const listing = async (label: string, dir: string): Promise<Set<string>> => {
    const key = `${label}\0${dir}`;
    let names = listings.get(key);
    if (!names) {
      const entries = await fs
        .readdir(path.join(sourceOf(label), dir))
        .catch((err: NodeJS.ErrnoException) => {
          if (err.code === "ENOENT") return [] as string[];
          throw new SelectiveRestoreUnsupported(
            `backup ${label}: cannot list ${dir} (${err.code ?? err.message})`,
          );
        });
      names = new Set(entries);
      listings.set(key, names);
    }
    return names;
  };
  const sources: Sources = { compressed: new Map(), raw: [], create: [] };
  for (const f of files) {
    const names = await listing(f.label, path.dirname(f.name));
    const base = path.basename(f.name);
    if (ext && names.has(`${base}${ext}`)) {
      const list = sources.compressed.get(f.label) ?? [];
      list.push(f);
      sources.compressed.set(f.label, list);
    } else if (names.has(base)) {
      sources.raw.push({ label: f.label, file: f });
    } else if (f.size === 0) {
      sources.create.push(f);
    } else {
      throw new SelectiveRestoreUnsupported(
        `backup ${f.label}: ${f.name}${ext} is missing from the repository`,
      );
    }
  }
  return sources;
}

async function sha1(file: string, size: number): Promise<{ hash: string; bytes: number }> {
  const hash = createHash("sha1");
  let bytes = 0;
  if (size <= 8 * 1024 * 1024) {
    const data = await fs.readFile(file);
    bytes = data.length;
    hash.update(data);
  } else {
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
      bytes += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
  }
  return { hash: hash.digest("hex"), bytes };
}

/**
 * Restores the data directory of a scratch instance for `database` from the repository (see the
 * module comment). Throws {@link SelectiveRestoreUnsupported} before writing anything when the
 * backup cannot be restored this way (the caller falls back to pgBackRest); any other error may
 * leave a partial data directory behind (the caller removes it). Nothing it started still runs
 * when it returns or throws.
 */
export async function selectiveRestore(p: SelectiveRestoreParams): Promise<SelectiveRestoreStats> {
  const t0 = Date.now();
  const verify = p.verify ?? "checksum";
  const parallel = Math.max(1, p.parallel ?? Math.min(4, os.availableParallelism()));
  const manifest = await readBackupManifest(p.repoPath, p.stanza, p.label);
  const plan = planSelectiveRestore(manifest, p.database, {
    emptyExcludedDirectories: p.emptyExcludedDirectories,
    ...(p.formerNames ? { formerNames: p.formerNames } : {}),
  });
  const ext = manifest.compressExt ? `.${manifest.compressExt}` : "";
  const sourceOf = (label: string): string => path.join(p.repoPath, "backup", p.stanza, label, PG_DATA);
  const sources = await locateSources(plan.files, ext, sourceOf);
  const manifestMs = Date.now() - t0;

  // Directories, parents first.
  const t1 = Date.now();
  for (const d of plan.paths) {
    const full = d.name === "" ? p.dataDir : path.join(p.dataDir, d.name);
    await fs.mkdir(full, { mode: d.mode });
    await fs.chmod(full, d.mode);
    await p.chown(full);
  }

  // Verification: size (and SHA-1) against the manifest; the mode the manifest records.
  const check = async (f: ManifestFile): Promise<void> => {
    const full = path.join(p.dataDir, f.name);
    if (verify === "checksum" && f.checksum) {
      const actual = await sha1(full, f.size);
      if (actual.bytes !== f.size) {
        throw new Error(
          `selective restore: ${f.name} has ${actual.bytes} bytes, the manifest says ${f.size}`,
        );
      }
      if (actual.hash !== f.checksum) {
        throw new Error(
          `selective restore: ${f.name} checksum ${actual.hash} does not match the manifest's ${f.checksum}`,
        );
      }
    } else {
      const st = await fs.stat(full);
      if (st.size !== f.size) {
        throw new Error(`selective restore: ${f.name} has ${st.size} bytes, the manifest says ${f.size}`);
      }
    }
    await fs.chmod(full, f.mode);
  };
  // Each finished chunk is verified while the next ones are decompressed.
  const verifications: Array<Promise<{ error: unknown } | undefined>> = [];
  const verifyLater = (files: readonly ManifestFile[]): void => {
    verifications.push(
      mapLimit(files, 4, check).then(
        () => undefined,
        (error: unknown) => ({ error }),
      ),
    );
  };

  const jobs: Array<{ label: string; files: ManifestFile[] }> = [];
  for (const [label, list] of sources.compressed) {
    for (const files of chunkFiles(list, parallel)) jobs.push({ label, files });
  }
  let decompressed = 0;
  try {
    for (const f of sources.create) {
      const full = path.join(p.dataDir, f.name);
      await (await fs.open(full, "wx", f.mode)).close();
      await p.chown(full);
    }
    for (const { label, file } of sources.raw) {
      const full = path.join(p.dataDir, file.name);
      await fs.copyFile(path.join(sourceOf(label), file.name), full, fs.constants.COPYFILE_EXCL);
      await p.chown(full);
    }
    verifyLater([...sources.create, ...sources.raw.map((r) => r.file)]);
    await mapLimit(jobs, parallel, async (job) => {
      await p.decompress(
        sourceOf(job.label),
        job.files.map((f) => `${f.name}${ext}`),
        p.dataDir,
      );
      verifyLater(job.files);
    });
    decompressed = Date.now();
  } finally {
    // never return (or throw) while a verification still reads the data directory
    await Promise.all(verifications);
  }
  const failed = (await Promise.all(verifications)).find((r) => r !== undefined);
  if (failed) throw failed.error;
  const verifyTailMs = Date.now() - decompressed;

  // Recovery settings, as pgBackRest writes them.
  const autoConf = path.join(p.dataDir, "postgresql.auto.conf");
  const existing = await fs.readFile(autoConf, "utf8").catch(() => "");
  await fs.writeFile(autoConf, recoveryAutoConf(existing, p.restoreCommand, p.target), { mode: 0o600 });
  await p.chown(autoConf);
  const signal = path.join(p.dataDir, "recovery.signal");
  await fs.writeFile(signal, "", { mode: 0o600 });
  await p.chown(signal);

  return {
    databases: manifest.databases,
    files: plan.files.length,
    emptyFiles: plan.emptyFiles,
    bytes: plan.bytes,
    skippedFiles: plan.skippedFiles,
    includedOids: plan.includedOids,
    excludedOids: plan.excludedOids,
    databaseOid: plan.databaseOid,
    labels: [...new Set(plan.files.map((f) => f.label))].sort(),
    processes: jobs.length,
    verify,
    manifestMs,
    copyMs: Date.now() - t1,
    verifyTailMs,
  };
}
