/**
 * The kubernetes target's offsite repository under Pulumi mocks (test/helpers/pulumi-mocks.ts):
 * repo2 is in the pgbackrest.conf of the PostgreSQL Secret, its S3 keys and SFTP private key never
 * in the ConfigMap or any other object, the SFTP key mounted next to pgbackrest.conf where the file
 * names it; and the pod's config hash follows the offsite repository's shape.
 */
import { describe, expect, it } from "vitest";
import { type K8sObject, isK8s, objectOf, one } from "../helpers/k8s-objects";
import { installMocks, registered } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { PostgresServer, type PostgresServerArgs } from "../../components/kubernetes/PostgresServer";
import type { OffsiteRepo } from "../../lib/pg/offsite";

const S3_SECRET = "offsite-s3-secret-0123456789";
const SFTP_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";

const S3: OffsiteRepo = {
  type: "s3",
  path: "/loomworks",
  endpoint: "s3.eu-central-1.amazonaws.com",
  bucket: "lw-backups",
  region: "eu-central-1",
  accessKey: "AKIAOFFSITE",
  secretKey: S3_SECRET,
  uriStyle: "host",
  verifyTls: true,
  retentionFull: 8,
};

const SFTP: OffsiteRepo = {
  type: "sftp",
  path: "/srv/backups",
  host: "backup.example.net",
  port: 22,
  user: "pgbackrest",
  privateKeyFile: "/etc/pgbackrest/offsite-sftp-key",
  privateKey: SFTP_KEY,
  hostKeyFingerprint: "b".repeat(64),
  hostKeyHashType: "sha256",
  retentionFull: 8,
};

async function build(name: string, offsite?: OffsiteRepo): Promise<K8sObject[]> {
  const first = registrations.length;
  const args: PostgresServerArgs = {
    namespace: "loomworks-prod",
    image: "registry.example.com/loomworks/postgres:15",
    archiveTimeoutSeconds: 60,
    retentionFull: 2,
    ...(offsite ? { offsite } : {}),
  };
  const server = new PostgresServer(name, args);
  await registered(server);
  return registrations.slice(first).filter(isK8s).map(objectOf);
}

const podOf = (objs: K8sObject[]) => one(objs, "StatefulSet", "postgres").spec?.template;

describe("kubernetes: the offsite repository", () => {
  it("S3: repo2 in the Secret's pgbackrest.conf, encrypted; its keys in no other object", async () => {
    const objs = await build("pg-s3", S3);
    const conf = one(objs, "Secret", "loomworks-postgres-secrets").stringData?.["pgbackrest.conf"] as string;
    expect(conf).toMatch(/^repo2-type=s3$/m);
    expect(conf).toMatch(new RegExp(`^repo2-s3-key-secret=${S3_SECRET}$`, "m"));
    expect(conf).toMatch(/^repo2-cipher-pass=pw-pg-s3-backup-cipher-pass$/m);
    for (const o of objs.filter((x) => x.kind !== "Secret")) {
      expect(JSON.stringify(o)).not.toContain(S3_SECRET);
      expect(JSON.stringify(o)).not.toContain("AKIAOFFSITE");
    }
  });

  it("SFTP: the private key is a key of the Secret, mounted as the file pgbackrest.conf names", async () => {
    const objs = await build("pg-sftp", SFTP);
    const secret = one(objs, "Secret", "loomworks-postgres-secrets");
    expect(secret.stringData?.["offsite-sftp-key"]).toBe(SFTP_KEY);
    expect(secret.stringData?.["pgbackrest.conf"]).toMatch(
      /^repo2-sftp-private-key-file=\/etc\/pgbackrest\/offsite-sftp-key$/m,
    );
    const volume = (podOf(objs)?.spec?.volumes as { name: string; secret?: { items: unknown[] } }[]).find(
      (v) => v.name === "pgbackrest-config",
    );
    expect(volume?.secret?.items).toEqual([
      { key: "pgbackrest.conf", path: "pgbackrest.conf" },
      { key: "offsite-sftp-key", path: "offsite-sftp-key" },
    ]);
    for (const o of objs.filter((x) => x.kind !== "Secret"))
      expect(JSON.stringify(o)).not.toContain("b3BlbnNzaC1r");
  });

  it("adding an offsite repository rolls the pod (config hash); without one nothing changes", async () => {
    const hash = (objs: K8sObject[]) =>
      (podOf(objs)?.metadata?.annotations as Record<string, string>)["loomworks/config-hash"];
    const none = hash(await build("pg-none"));
    expect(hash(await build("pg-none-again"))).toBe(none);
    expect(hash(await build("pg-with-s3", S3))).not.toBe(none);
  });
});
