/**
 * Repository encryption (issue 3, item 1): a distinctive value written to a database can be found
 * in the pgBackRest repository's files (backup and archived WAL, zstd-decompressed) when the
 * repository is not encrypted, and nowhere when `encryptionPassphrase` is set; the passphrase is in
 * no log file. Two tiny clusters of their own.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import {
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  runBackup,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { findFreePort, makeStateDir } from "../../testkit/cluster";

const token = randomBytes(16).toString("hex");
const passphrase = `pass-${randomBytes(24).toString("base64url")}`;
const logs: string[] = [];
let plain: LocalClusterSpec;
let encrypted: LocalClusterSpec;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** `zstd -dcq` of files; the concatenated output and whether every file decompressed. */
function zstdCat(files: string[]): Promise<{ out: Buffer; ok: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn("zstd", ["-dcq", "--", ...files], { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve({ out: Buffer.concat(chunks), ok: code === 0 }));
  });
}

interface Scan {
  files: number;
  zstFiles: number;
  /** Files (raw), or batches of .zst files (decompressed), containing the token. */
  hits: string[];
  /** .zst files that are zstd frames (the others are ciphertext). */
  decompressible: number;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Searches every repository file for the token: raw bytes, and the content of each .zst file. */
async function scanRepository(spec: LocalClusterSpec): Promise<Scan> {
  const { paths } = localClusterLayout(spec);
  const files = await filesUnder(paths.repoPath);
  const needle = Buffer.from(token);
  const hits: string[] = [];
  const frames: string[] = [];
  let zstFiles = 0;
  for (const file of files) {
    const bytes = await fs.readFile(file);
    if (bytes.includes(needle)) hits.push(file);
    if (file.endsWith(".zst")) {
      zstFiles++;
      if (bytes.subarray(0, 4).equals(ZSTD_MAGIC)) frames.push(file);
    }
  }
  // Decompress in batches (one zstd process per 200 files); a batch that fails is an error.
  for (let i = 0; i < frames.length; i += 200) {
    const batch = frames.slice(i, i + 200);
    const { out, ok } = await zstdCat(batch);
    expect(ok, `zstd -dc of ${batch.length} files`).toBe(true);
    if (out.includes(needle)) {
      for (const file of batch) {
        if ((await zstdCat([file])).out.includes(needle)) hits.push(`${file} (decompressed)`);
      }
    }
  }
  return { files: files.length, zstFiles, hits, decompressible: frames.length };
}

async function writeTokenAndBackUp(spec: LocalClusterSpec): Promise<void> {
  const dsn = localAdminDsn(spec);
  await withClient(dsn, async (c) => {
    await c.query("CREATE DATABASE tenant_secret");
  });
  await withClient(dsn.replace(/\/postgres$/, "/tenant_secret"), async (c) => {
    // short values (stored uncompressed in the heap), many rows, and one long repeated value
    await c.query("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)");
    await c.query("INSERT INTO notes (body) SELECT $1 FROM generate_series(1, 200)", [token]);
    await c.query("INSERT INTO notes (body) VALUES (repeat($1, 50))", [`${token} `]);
    await c.query("CHECKPOINT");
    await c.query("SELECT pg_switch_wal()");
  });
  await runBackup(spec, "full");
}

beforeAll(async () => {
  const base = 29000 + Math.floor(Math.random() * 2000);
  const [plainPort, encPort] = [await findFreePort(base), await findFreePort(base + 10)];
  const make = async (prefix: string, port: number, extra: Partial<LocalClusterSpec>) => ({
    stateDir: await makeStateDir(prefix),
    port,
    archiveTimeoutSeconds: 5,
    superuserPassword: randomBytes(18).toString("base64url"),
    stanza: "enc",
    retentionFull: 2, // keeps the first backup's WAL, where the rows were written
    ...extra,
  });
  plain = await make("loomworks-enc-plain-it-", plainPort, {});
  encrypted = await make("loomworks-enc-aes-it-", encPort, { encryptionPassphrase: passphrase });
  await Promise.all([
    ensureCluster(plain, (m) => logs.push(m)),
    ensureCluster(encrypted, (m) => logs.push(m)),
  ]);
  await Promise.all([writeTokenAndBackUp(plain), writeTokenAndBackUp(encrypted)]);
});

afterAll(async () => {
  for (const spec of [plain, encrypted]) {
    if (!spec) continue;
    await destroyCluster(spec).catch(() => undefined);
    await fs.rm(spec.stateDir, { recursive: true, force: true });
  }
});

describe("repository encryption", () => {
  it("without a passphrase the value is readable in the repository", async () => {
    expect((await stanzaInfo(localClusterLayout(plain).pgbackrest)).cipher).toBe("none");
    const scan = await scanRepository(plain);
    expect(scan.decompressible).toBe(scan.zstFiles);
    expect(scan.hits.some((h) => h.includes(`${path.sep}backup${path.sep}`))).toBe(true);
    expect(scan.hits.some((h) => h.includes(`${path.sep}archive${path.sep}`))).toBe(true);
  });

  it("with a passphrase (aes-256-cbc) the value is in no repository file, compressed or not", async () => {
    const { pgbackrest, paths } = localClusterLayout(encrypted);
    expect((await stanzaInfo(pgbackrest)).cipher).toBe("aes-256-cbc");
    const scan = await scanRepository(encrypted);
    expect(scan.zstFiles).toBeGreaterThan(100); // the same backup and WAL files exist...
    expect(scan.decompressible).toBe(0); // ...but are ciphertext, not zstd frames
    expect(scan.hits).toEqual([]);
    // the passphrase is only in pgbackrest.conf, which only postgres may read
    expect((await fs.stat(paths.pgbackrestConf)).mode & 0o777).toBe(0o600);
  });

  it("the passphrase appears in no log file and no log message", async () => {
    const { paths } = localClusterLayout(encrypted);
    const logFiles = [...(await filesUnder(paths.logDir)), ...(await filesUnder(paths.pgbackrestLogPath))];
    expect(logFiles.length).toBeGreaterThan(0);
    for (const file of logFiles) {
      expect((await fs.readFile(file, "utf8")).includes(passphrase), file).toBe(false);
    }
    expect(logs.join("\n")).not.toContain(passphrase);
  });
});
