import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack } from "../../testkit/local-stack";

/**
 * `backups.offsite` through `pulumi up` on the local target: repo2 is the stack's own directory under
 * the configured mount point (made by pgBackRest, the mount point never), and the first backup
 * reaches it. The repositories' behaviour itself: test/integration/offsite-backups.test.ts.
 */
describe("a local stack with an offsite path repository", () => {
  let s: LocalTestStack;
  let mount: string;

  beforeAll(async () => {
    s = await LocalTestStack.create("offsite");
    mount = fs.mkdtempSync(path.join(os.tmpdir(), "loomworks-offsite-mount-"));
    fs.chmodSync(mount, 0o777); // pgBackRest runs as postgres
  });

  afterAll(async () => {
    await s?.dispose();
    if (mount) fs.rmSync(mount, { recursive: true, force: true });
  });

  it("up writes the first full backup to <mount>/<project>/<stack>", async () => {
    await s.configure(
      { alpha: { tier: "basic", adminEmail: "owner@alpha.example" } },
      { backups: { retentionFull: 2, offsite: { type: "path", path: mount, retentionFull: 3 } } },
    );
    const result = await s.up();
    expect(result.summary.result).toBe("succeeded");
    const repo2 = path.join(mount, "loomworks-hosting", s.stack.name);
    expect(fs.readdirSync(mount)).toEqual(["loomworks-hosting"]);
    expect(fs.existsSync(path.join(repo2, "backup", "loomworks", "backup.info"))).toBe(true);
    const conf = path.join(s.stateDir, "pgbackrest", "pgbackrest.conf");
    const info = JSON.parse(
      execFileSync(
        "runuser",
        ["-u", "postgres", "--", "pgbackrest", `--config=${conf}`, "--output=json", "info"],
        {
          cwd: "/",
          encoding: "utf8",
        },
      ),
    ) as { backup: { database: { "repo-key": number } }[] }[];
    const repos = new Set(info[0].backup.map((b) => b.database["repo-key"]));
    expect([...repos].sort()).toEqual([1, 2]);
  });

  it("with the mount point gone, an up that changes the repository fails with what to do and makes no directory", async () => {
    fs.rmSync(mount, { recursive: true, force: true });
    await s.configure(
      { alpha: { tier: "basic", adminEmail: "owner@alpha.example" } },
      { backups: { retentionFull: 2, offsite: { type: "path", path: mount, retentionFull: 4 } } },
    );
    await expect(s.up()).rejects.toThrow(
      /offsite\.path .* does not exist: mount the offsite storage there first/,
    );
    expect(fs.existsSync(mount)).toBe(false);
  });
});
