/**
 * The offsite repository's configuration and rendering (platform.backups.offsite → pgBackRest
 * repo2): the schema's per-type rules, pgbackrest.conf on the local and docker targets (an unset
 * offsite renders the very file it always did), the S3 and native SFTP options, the refusal of SFTP
 * before pgBackRest 2.46, and the explicit choice of the repository a restore reads from.
 * The local target's repo2 is tested for real in test/integration/offsite-backups.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { checkLocalOffsite } from "../../components/local/PostgresCluster";
import { offsiteRepo, offsiteStackDir } from "../../components/offsite";
import { OFFSITE_CONTAINER, renderDockerPgBackRestConf } from "../../components/docker/config";
import {
  kubernetesOffsiteRefusal,
  renderKubernetesPgBackRestConf,
} from "../../components/kubernetes/postgresConfig";
import { checkOffsiteRepo } from "../../lib/pg/cluster";
import { offsiteUnsupportedReason, type OffsiteRepo } from "../../lib/pg/offsite";
import {
  renderPgBackRestConf,
  secretsFromConf,
  type PgBackRestBackup,
  type PgBackRestStanzaInfo,
} from "../../lib/pg/pgbackrest";
import { reposInConf, restoreSource } from "../../lib/pg/repositories";
import { confOption } from "../../lib/restore/scratch";
import { RestoreTargetError, planAcrossRepos } from "../../lib/restore/target";

const templates = { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } };
const S3_SECRET = "s3-secret-key-0123456789abcdef";

function backupsOf(offsite: unknown, extra: Record<string, unknown> = {}) {
  return parseStackConfig({ platform: { templates, backups: { ...extra, offsite } } }).platform.backups;
}

function problemsOf(offsite: unknown): string[] {
  try {
    backupsOf(offsite);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).problems];
  }
  throw new Error("expected a ConfigError");
}

const LOCAL = {
  repoPath: "/srv/lw/pgbackrest/repo",
  retentionFull: 2,
  spoolPath: "/srv/lw/pgbackrest/spool",
  lockPath: "/srv/lw/pgbackrest/lock",
  logPath: "/srv/lw/pgbackrest/log",
  stanza: "loomworks",
  pgPath: "/srv/lw/postgres/data",
  pgPort: 15432,
  pgSocketPath: "/srv/lw/postgres/run",
};

/** pgbackrest.conf as the project rendered it before the offsite repository existed (byte for byte). */
const SINGLE_REPO_CONF = `# Loomworks Hosting: pgBackRest configuration.
# Rendered from templates/pgbackrest.conf.tmpl; placeholders are names in double braces.
# May contain the repository passphrase: keep this file mode 0600, owned by postgres.

[global]
repo1-path=/srv/lw/pgbackrest/repo
repo1-retention-full-type=count
repo1-retention-full=2

# Zstandard ("zst" is pgBackRest's name for it; "zstd" is rejected)
compress-type=zst
compress-level=3
process-max=2
start-fast=y
archive-async=y
archive-timeout=60
spool-path=/srv/lw/pgbackrest/spool
lock-path=/srv/lw/pgbackrest/lock
log-path=/srv/lw/pgbackrest/log
log-level-console=warn
log-level-file=info
log-subprocess=n

[loomworks]
pg1-path=/srv/lw/postgres/data
pg1-port=15432
pg1-socket-path=/srv/lw/postgres/run
pg1-user=postgres
`;

const S3: OffsiteRepo = {
  type: "s3",
  path: "/loomworks",
  endpoint: "minio.internal:9000",
  bucket: "backups",
  region: "eu-central-1",
  accessKey: "AKIAEXAMPLE",
  secretKey: S3_SECRET,
  uriStyle: "path",
  verifyTls: false,
  retentionFull: 4,
};

const SFTP: OffsiteRepo = {
  type: "sftp",
  path: "/backups/loomworks",
  host: "backup.example.net",
  port: 2222,
  user: "pgbackrest",
  privateKeyFile: "/etc/pgbackrest/offsite-sftp-key",
  hostKeyFingerprint: "a".repeat(64),
  hostKeyHashType: "sha256",
  retentionFull: 7,
};

const globalLines = (conf: string): string[] =>
  conf
    .split("[loomworks]")[0]
    .split("\n")
    .filter((l) => l.startsWith("repo2-"));

describe("platform.backups.offsite: configuration", () => {
  it("is absent by default, and a path repository takes its own retention", () => {
    expect(backupsOf(undefined).offsite).toBeUndefined();
    expect(backupsOf({ type: "path", path: "/mnt/offsite", retentionFull: 6 }).offsite).toMatchObject({
      type: "path",
      path: "/mnt/offsite",
      retentionFull: 6,
    });
  });

  it("names every missing key of a type and refuses keys of another type", () => {
    const s3 = problemsOf({ type: "s3", path: "/r", bucket: "b", host: "h" });
    expect(s3).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/key "backups\.offsite\.endpoint": is required for type s3/),
        expect.stringMatching(/key "backups\.offsite\.region": is required for type s3/),
        expect.stringMatching(/key "backups\.offsite\.accessKey": is required for type s3/),
        expect.stringMatching(/key "backups\.offsite\.secretKey": is required for type s3/),
        expect.stringMatching(/key "backups\.offsite\.host": is not a setting of type s3/),
      ]),
    );
    const sftp = problemsOf({ type: "sftp", path: "/r", host: "h", user: "u", privateKeyFile: "/k" });
    expect(sftp).toEqual([expect.stringMatching(/exactly one of hostKeyFingerprint, knownHostsFile/)]);
    expect(problemsOf({ type: "ftp", path: "/r" })).toEqual([
      expect.stringMatching(/key "backups\.offsite\.type": must be one of s3, sftp, path/),
    ]);
    expect(problemsOf({ type: "path", path: "relative/dir" })).toEqual([
      expect.stringMatching(/key "backups\.offsite\.path": must be an absolute path/),
    ]);
  });

  it("never shows a secret in a message", () => {
    const problems = problemsOf({
      type: "s3",
      path: "/r",
      secretKey: ` ${S3_SECRET}`,
      accessKey: ` ${S3_SECRET}`,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/key "backups\.offsite\.secretKey": .*\(got a secret value\)/),
      ]),
    );
    expect(problems.join("\n")).not.toContain(S3_SECRET);
  });

  it("encrypts the offsite repository with the first one's passphrase unless it has its own", () => {
    const shared = backupsOf({ type: "path", path: "/mnt/o" }, { encryptionPassphrase: "first-pass-123" });
    expect(offsiteRepo(shared, { sftpKeyFile: "/k", stackDir: "p/s" })).toMatchObject({
      encryptionPassphrase: "first-pass-123",
    });
    const own = backupsOf(
      { type: "path", path: "/mnt/o", encryptionPassphrase: "offsite-pass-456" },
      { encryptionPassphrase: "first-pass-123" },
    );
    expect(offsiteRepo(own, { sftpKeyFile: "/k", stackDir: "p/s" })).toMatchObject({
      encryptionPassphrase: "offsite-pass-456",
    });
    expect(
      offsiteRepo(backupsOf({ type: "path", path: "/mnt/o" }), { sftpKeyFile: "/k", stackDir: "p/s" }),
    ).not.toHaveProperty("encryptionPassphrase");
  });
});

describe("two stacks given the same share or bucket", () => {
  it.each([
    { type: "path" as const, path: "/mnt/nas/loomworks" },
    { type: "s3" as const, path: "/backups" },
  ])("write separate $type repositories, each under <project>/<stack>", (o) => {
    const backups =
      o.type === "path"
        ? backupsOf({ type: "path", path: o.path })
        : backupsOf({
            type: "s3",
            path: o.path,
            endpoint: "s3.example.com",
            bucket: "b",
            region: "r",
            accessKey: "AKIAEXAMPLE",
            secretKey: "secret-example-123",
          });
    const prod = offsiteRepo(backups, {
      sftpKeyFile: "/k",
      stackDir: offsiteStackDir("loomworks-hosting", "prod"),
    });
    const staging = offsiteRepo(backups, {
      sftpKeyFile: "/k",
      stackDir: offsiteStackDir("loomworks-hosting", "staging"),
    });
    expect(prod?.path).toBe(`${o.path}/loomworks-hosting/prod`);
    expect(staging?.path).toBe(`${o.path}/loomworks-hosting/staging`);
  });
});

describe("pgbackrest.conf with an offsite repository", () => {
  it("without one: exactly the single-repository file existing stacks have", () => {
    expect(renderPgBackRestConf(LOCAL)).toBe(SINGLE_REPO_CONF);
    expect(reposInConf(SINGLE_REPO_CONF)).toEqual([1]);
  });

  it("a mounted path: repo2 with its own retention and, when set, its own encryption", () => {
    const conf = renderPgBackRestConf({
      ...LOCAL,
      encryptionPassphrase: "first-pass",
      offsite: { type: "path", path: "/mnt/offsite", retentionFull: 5, encryptionPassphrase: "second-pass" },
    });
    expect(globalLines(conf)).toEqual([
      "repo2-path=/mnt/offsite",
      "repo2-retention-full-type=count",
      "repo2-retention-full=5",
      "repo2-cipher-type=aes-256-cbc",
      "repo2-cipher-pass=second-pass",
    ]);
    expect(conf).toMatch(/^repo1-retention-full=2$/m);
    expect(conf).toMatch(/^repo1-cipher-pass=first-pass$/m);
    expect(reposInConf(conf)).toEqual([1, 2]);
    expect(secretsFromConf(conf).sort()).toEqual(["first-pass", "second-pass"]);
    expect(confOption(conf, "repo2-path")).toBe("/mnt/offsite");
  });

  it("S3: endpoint, bucket, region, keys, URI style and TLS verification; both keys count as secrets", () => {
    const conf = renderPgBackRestConf({ ...LOCAL, offsite: S3 });
    expect(globalLines(conf)).toEqual([
      "repo2-type=s3",
      "repo2-path=/loomworks",
      "repo2-s3-endpoint=minio.internal:9000",
      "repo2-s3-bucket=backups",
      "repo2-s3-region=eu-central-1",
      "repo2-s3-key=AKIAEXAMPLE",
      `repo2-s3-key-secret=${S3_SECRET}`,
      "repo2-s3-uri-style=path",
      "repo2-storage-verify-tls=n",
      "repo2-retention-full-type=count",
      "repo2-retention-full=4",
    ]);
    expect(secretsFromConf(conf)).toEqual(["AKIAEXAMPLE", S3_SECRET]);
  });

  it("SFTP (pgBackRest 2.46+): host, port, user, key file, and the host key by fingerprint or known_hosts", () => {
    expect(globalLines(renderPgBackRestConf({ ...LOCAL, offsite: SFTP }))).toEqual([
      "repo2-type=sftp",
      "repo2-path=/backups/loomworks",
      "repo2-sftp-host=backup.example.net",
      "repo2-sftp-host-port=2222",
      "repo2-sftp-host-user=pgbackrest",
      "repo2-sftp-private-key-file=/etc/pgbackrest/offsite-sftp-key",
      "repo2-sftp-host-key-hash-type=sha256",
      `repo2-sftp-host-fingerprint=${"a".repeat(64)}`,
      "repo2-sftp-host-key-check-type=fingerprint",
      "repo2-retention-full-type=count",
      "repo2-retention-full=7",
    ]);
    const known: OffsiteRepo = {
      ...SFTP,
      hostKeyFingerprint: undefined,
      knownHostsFile: "/etc/pgbackrest/known_hosts",
    };
    expect(globalLines(renderPgBackRestConf({ ...LOCAL, offsite: known }))).toEqual(
      expect.arrayContaining([
        "repo2-sftp-known-host=/etc/pgbackrest/known_hosts",
        "repo2-sftp-host-key-check-type=strict",
      ]),
    );
  });

  it("refuses a value that would break the file", () => {
    expect(() =>
      renderPgBackRestConf({
        ...LOCAL,
        offsite: { ...S3, bucket: "b\nrepo1-path=/tmp/evil" } as OffsiteRepo,
      }),
    ).toThrow(/s3-bucket must be one non-empty line/);
  });
});

describe("SFTP needs pgBackRest 2.46", () => {
  it("is refused on 2.45 with what to do instead, accepted from 2.46 on", () => {
    const reason = offsiteUnsupportedReason(SFTP, "2.45");
    expect(reason).toMatch(
      /needs pgBackRest 2\.46 or later \(repo-type=sftp\), and pgBackRest 2\.45 runs here/,
    );
    expect(reason).toMatch(/sshfs.*type path.*or use type s3/);
    expect(offsiteUnsupportedReason(SFTP, "2.46")).toBeUndefined();
    expect(offsiteUnsupportedReason(SFTP, "2.54.1")).toBeUndefined();
    expect(offsiteUnsupportedReason(S3, "2.45")).toBeUndefined();
  });

  it("fails the local target's preview on this machine's pgBackRest when it is older", () => {
    expect(() => checkLocalOffsite(SFTP, "2.45")).toThrow(
      /backups\.offsite\.type sftp needs pgBackRest 2\.46/,
    );
    expect(() => checkLocalOffsite(SFTP, "2.47")).not.toThrow();
    expect(() => checkLocalOffsite({ type: "path", path: "/mnt/o", retentionFull: 2 }, "2.45")).not.toThrow();
  });
});

describe("the local target's checks of a path repository", () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "offsite-check-"));

  it("needs the mount point, not the stack's directory under it (pgBackRest makes that one)", () => {
    const mount = tmp();
    const repo = offsiteRepo(backupsOf({ type: "path", path: mount }), {
      sftpKeyFile: "/k",
      stackDir: offsiteStackDir("loomworks-hosting", "dev"),
    });
    expect(repo).toMatchObject({ path: `${mount}/loomworks-hosting/dev`, mountPoint: mount });
    expect(() => checkOffsiteRepo(repo)).not.toThrow();
    fs.rmSync(mount, { recursive: true });
    expect(() => checkOffsiteRepo(repo)).toThrow(
      /offsite\.path .* does not exist: mount the offsite storage/,
    );
  });

  it("refuses the first repository under another name (a symlink), inside it, or around it", () => {
    const root = tmp();
    const first = path.join(root, "state", "pgbackrest", "repo");
    fs.mkdirSync(first, { recursive: true });
    fs.symlinkSync(first, path.join(root, "alias"));
    fs.mkdirSync(path.join(first, "sub"));
    fs.mkdirSync(path.join(root, "elsewhere"));
    const at = (p: string): OffsiteRepo => ({
      type: "path",
      path: `${p}/x/y`,
      mountPoint: p,
      retentionFull: 2,
    });
    expect(() => checkOffsiteRepo(at(path.join(root, "alias")), first)).toThrow(
      /inside the first repository/,
    );
    expect(() => checkOffsiteRepo(at(path.join(first, "sub")), first)).toThrow(/inside the first repository/);
    expect(() => checkOffsiteRepo(at(path.join(root, "state")), first)).toThrow(
      /around the first repository/,
    );
    expect(() => checkOffsiteRepo(at(path.join(root, "elsewhere")), first)).not.toThrow();
    fs.rmSync(root, { recursive: true });
  });
});

describe("docker and kubernetes render repo2", () => {
  it("docker: a path repository is the bind mount's directory inside the container", () => {
    const offsite = offsiteRepo(backupsOf({ type: "path", path: "/mnt/nas/loomworks", retentionFull: 3 }), {
      sftpKeyFile: OFFSITE_CONTAINER.sftpKeyFile,
      mountedPath: OFFSITE_CONTAINER.mountDir,
      stackDir: "loomworks-hosting/prod",
    });
    const conf = renderDockerPgBackRestConf({
      stanza: "loomworks",
      retentionFull: 2,
      ...(offsite ? { offsite } : {}),
    });
    expect(globalLines(conf)).toEqual([
      "repo2-path=/var/lib/pgbackrest-offsite/loomworks-hosting/prod",
      "repo2-retention-full-type=count",
      "repo2-retention-full=3",
    ]);
    expect(renderDockerPgBackRestConf({ stanza: "loomworks", retentionFull: 2 })).not.toMatch(/^repo2-/m);
  });

  it("kubernetes: repo2 always encrypted (the first repository's passphrase by default); a mounted path refused", () => {
    const conf = renderKubernetesPgBackRestConf({
      retentionFull: 2,
      encryptionPassphrase: "k8s-pass",
      offsite: S3,
    });
    expect(conf).toMatch(/^repo2-cipher-type=aes-256-cbc$/m);
    expect(conf).toMatch(/^repo2-cipher-pass=k8s-pass$/m);
    expect(kubernetesOffsiteRefusal({ type: "path", path: "/mnt", retentionFull: 2 })).toMatch(
      /on kubernetes use type s3 or sftp/,
    );
    expect(() =>
      renderKubernetesPgBackRestConf({
        retentionFull: 2,
        encryptionPassphrase: "x",
        offsite: { type: "path", path: "/mnt", retentionFull: 2 },
      }),
    ).toThrow(/type path is a mounted directory/);
  });
});

// ---------------------------------------------------------------------------------------------
// which repository a restore reads from

const backup = (label: string, repo: number, start: number, stopLsn: string): PgBackRestBackup => ({
  label,
  type: "full",
  prior: null,
  timestamp: { start, stop: start + 10 },
  archive: { start: null, stop: null },
  lsn: { start: "0/1000028", stop: stopLsn },
  database: { id: 1, "repo-key": repo },
});

function info(repo1Status: number, backups: PgBackRestBackup[]): PgBackRestStanzaInfo {
  return {
    name: "loomworks",
    status: { code: repo1Status === 0 ? 0 : 4, message: repo1Status === 0 ? "ok" : "different across repos" },
    repo: [
      {
        key: 1,
        cipher: "none",
        status: { code: repo1Status, message: repo1Status === 0 ? "ok" : "missing stanza path" },
      },
      { key: 2, cipher: "none", status: { code: 0, message: "ok" } },
    ],
    cipher: "none",
    db: [],
    backup: backups,
    archive: [],
  };
}

const NOW = new Date("2026-12-01T12:00:00Z");
const planTo = (i: PgBackRestStanzaInfo, time: string) =>
  planAcrossRepos(i, { subdomain: "acme", target: { time }, now: NOW, currentLsn: "0/4000000" });
const T = (iso: string) => Date.parse(iso) / 1000;

describe("restores choose their repository explicitly", () => {
  const both = [
    backup("20261201-100000F", 1, T("2026-12-01T10:00:00Z"), "0/3000100"),
    backup("20261201-100100F", 2, T("2026-12-01T10:01:00Z"), "0/3000200"),
    backup("20261124-100000F", 2, T("2026-11-24T10:00:00Z"), "0/2000100"),
  ];

  it("repo1 first while it is usable and reaches the target", () => {
    const plan = planTo(info(0, both), "2026-12-01T11:00:00Z");
    expect(plan.repo).toBe(1);
    expect(plan.backup.label).toBe("20261201-100000F");
    expect(plan.repoFallback).toBeUndefined();
  });

  it("repo2 when repo1 is lost, saying why", () => {
    const lost = info(
      1,
      both.filter((b) => b.database?.["repo-key"] === 2),
    );
    const plan = planTo(lost, "2026-12-01T11:00:00Z");
    expect(plan.repo).toBe(2);
    expect(plan.backup.label).toBe("20261201-100100F");
    expect(plan.repoFallback).toBe("repo1 is not usable (missing stanza path)");
    expect(restoreSource(lost)).toMatchObject({
      repo: 2,
      fallback: "repo1 is not usable (missing stanza path)",
    });
  });

  it("repo2 when the target is older than repo1's window (its own, longer retention)", () => {
    const plan = planTo(info(0, both), "2026-11-25T00:00:00Z");
    expect(plan.repo).toBe(2);
    expect(plan.backup.label).toBe("20261124-100000F");
    expect(plan.repoFallback).toMatch(/^repo1: /);
  });

  it("refuses with repo1's reason when no repository reaches the target", () => {
    expect(() => planTo(info(0, both), "2026-01-01T00:00:00Z")).toThrow(RestoreTargetError);
  });

  it("the cluster's own restore: repo1's newest backup, or repo2's when repo1 holds none", () => {
    expect(restoreSource(info(0, both))).toMatchObject({ repo: 1, backup: { label: "20261201-100000F" } });
    const emptied = info(
      2,
      both.filter((b) => b.database?.["repo-key"] === 2),
    );
    expect(restoreSource(emptied)).toMatchObject({
      repo: 2,
      backup: { label: "20261201-100100F" },
      fallback: "repo1 holds no backup",
    });
    expect(restoreSource(info(0, []))).toBeUndefined();
  });
});
