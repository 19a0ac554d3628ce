/**
 * An S3 offsite repository for real: an S3-compatible server over HTTPS on a loopback port
 * (testkit/s3Server.ts: gofakes3, built from its Go module) as repo2 of a cluster of this file's
 * own. Backups and WAL reach the bucket; with repo1 deleted entirely, a tenant is restored to a
 * point in time from S3 alone (pgBackRest's own restore with --repo=2: the selective method reads
 * only file-system repositories). The S3 secret key is in no log line.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyRepository } from "../../lib/backup/backups";
import { localClusterLayout } from "../../lib/pg/cluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { backupsInRepo, segmentInRepo } from "../../lib/pg/repositories";
import { restoreTenant } from "../../lib/restore";
import { startS3Server, type S3Server } from "../../testkit/s3Server";
import {
  loseRepo1,
  offsiteCluster,
  waitFor,
  writeAroundTarget,
  type OffsiteCluster,
} from "../helpers/offsite";

const SECRET_KEY = "s3-offsite-secret-9f8e7d6c5b4a";
let s3: S3Server;
let c: OffsiteCluster;

beforeAll(async () => {
  s3 = await startS3Server("lw-offsite");
  c = await offsiteCluster("offsites3", async () => ({
    type: "s3",
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: "us-east-1",
    path: "/loomworks",
    accessKey: "AKIALOOMWORKSTEST",
    secretKey: SECRET_KEY,
    uriStyle: "path",
    // The test server's certificate is self-signed.
    verifyTls: false,
    retentionFull: 2,
  }));
}, 600_000);

afterAll(async () => {
  await c?.destroy();
  await s3?.stop();
}, 120_000);

describe("offsite repository in an S3-compatible bucket", () => {
  it("the first backup reaches the bucket; verify covers both repositories", async () => {
    const { pgbackrest } = localClusterLayout(c.spec);
    const info = await stanzaInfo(pgbackrest);
    expect(info.repo?.map((r) => [r.key, r.status.code])).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(backupsInRepo(info, 2)).toHaveLength(1);
    expect((await verifyRepository(c.spec)).text).toMatch(/^verify ok in 2 repositories: /);
  }, 300_000);

  it("with repo1 deleted entirely, a tenant is restored to a point in time from S3 alone", async () => {
    const { pgbackrest } = localClusterLayout(c.spec);
    const { target, segment } = await writeAroundTarget(c, "before-s3-target", "after-s3-target");
    await waitFor(`${segment} in the bucket`, () => segmentInRepo(pgbackrest, 2, segment));
    await loseRepo1(c.spec);

    const logs: string[] = [];
    const result = await restoreTenant(c.restoreOptions(target, (m) => logs.push(m)));
    expect(result.state).toBe("done");
    expect(result.timings.scratchMethod).toBe("pgbackrest");
    expect(result.timings.scratchFallback).toMatch(/repo2-type=s3/);
    expect(logs.join("\n")).toMatch(/restoring from the offsite repository repo2: repo1 is not usable/);
    const names = await c.partners();
    expect(names).toContain("before-s3-target");
    expect(names).not.toContain("after-s3-target");
    expect(logs.join("\n")).not.toContain(SECRET_KEY);
  }, 600_000);
});
