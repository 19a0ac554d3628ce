import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { clearStaleLocks } from "../../lib/pulumi/staleLocks";

describe("clearStaleLocks", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  function backendWith(locks: Record<string, object>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "locks-"));
    dirs.push(dir);
    const lockDir = path.join(dir, ".pulumi", "locks", "organization", "proj", "dev");
    fs.mkdirSync(lockDir, { recursive: true });
    for (const [name, content] of Object.entries(locks)) {
      fs.writeFileSync(path.join(lockDir, name), JSON.stringify(content));
    }
    return dir;
  }

  it("removes only locks of dead processes on this host", () => {
    const dead = spawnSync("true").pid as number; // exited: its pid is no longer alive
    const dir = backendWith({
      "dead.json": { pid: dead, hostname: os.hostname() },
      "live.json": { pid: process.pid, hostname: os.hostname() },
      "remote.json": { pid: dead, hostname: `${os.hostname()}-elsewhere` },
    });
    const removed = clearStaleLocks(`file://${dir}`).map((f) => path.basename(f));
    expect(removed).toEqual(["dead.json"]);
    const left = fs.readdirSync(path.join(dir, ".pulumi", "locks", "organization", "proj", "dev")).sort();
    expect(left).toEqual(["live.json", "remote.json"]);
  });

  it("ignores backends that are not file:// and missing lock folders", () => {
    expect(clearStaleLocks("s3://bucket")).toEqual([]);
    expect(clearStaleLocks(`file://${path.join(os.tmpdir(), "no-such-backend-xyz")}`)).toEqual([]);
  });
});
