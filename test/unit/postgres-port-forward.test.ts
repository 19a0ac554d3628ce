/**
 * scripts/postgres-port-forward.sh (how CI's `pulumi up` reaches the kubernetes target's PostgreSQL)
 * with a STAND-IN kubectl (no cluster here): its `port-forward` listens on the local port for a
 * moment and ends, like a real port-forward whose pod was replaced. The script must read namespace
 * and port from the stack file, reopen the forward when it ends, do nothing without an endpoint or
 * Service, and stop cleanly. shellcheck-clean too.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findFreePort } from "../../testkit/cluster";
import { repoRoot } from "../../testkit/repo";
import { requireTool } from "../helpers/tools";

const SCRIPT = path.join(repoRoot, "scripts", "postgres-port-forward.sh");
const work = mkdtempSync(path.join(tmpdir(), "lw-port-forward-"));
const bin = path.join(work, "bin");
const calls = path.join(work, "kubectl.log");

// The stand-in: logs its arguments; `get service postgres` succeeds when STANDIN_SERVICE=1;
// `port-forward` serves the local port for 1.5 s (a TCP listener) and exits.
spawnSync("mkdir", ["-p", bin]);
writeFileSync(
  path.join(bin, "kubectl"),
  `#!/bin/sh
printf '%s\\n' "$*" >>"${calls}"
case "$3" in
  get) [ "\${STANDIN_SERVICE:-0}" = 1 ] ;;
  port-forward)
    port=\${5%%:*}
    exec python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(1.5)' "$port" ;;
esac
`,
);
chmodSync(path.join(bin, "kubectl"), 0o755);

function stackFile(platform: Record<string, unknown>): string {
  const file = path.join(work, `Pulumi.${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `config:\n  loomworks:platform: ${JSON.stringify(platform)}\n`);
  return file;
}

function run(args: string[], env: Record<string, string>) {
  return spawnSync(SCRIPT, args, {
    encoding: "utf8",
    env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, RUNNER_TEMP: work, ...env },
    timeout: 90_000,
  });
}

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("postgres-port-forward.sh", () => {
  it("is shellcheck-clean", () => {
    requireTool("shellcheck");
    const r = spawnSync("shellcheck", [SCRIPT], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("forwards the stack's endpoint port to the postgres Service of its namespace, and reopens it", async () => {
    const port = await findFreePort(27432);
    const file = stackFile({
      kubernetes: { namespace: "lw-prod", postgres: { adminEndpoint: `127.0.0.1:${port}` } },
    });
    const env = { LOOMWORKS_STACK_FILE: file, STANDIN_SERVICE: "1" };
    try {
      const r = run(["ci"], env);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`127.0.0.1:${port} -> service/postgres in lw-prod`);
      // Each stand-in forward lives 1.5 s: after 4 s only a reopened one can answer.
      await new Promise((res) => setTimeout(res, 4_000));
      const log = readFileSync(calls, "utf8").split("\n");
      expect(log).toContain("-n lw-prod get service postgres");
      const forwards = log.filter(
        (l) => l === `-n lw-prod port-forward service/postgres ${port}:5432 --address 127.0.0.1`,
      );
      expect(forwards.length).toBeGreaterThanOrEqual(2);
    } finally {
      expect(run(["ci", "--stop"], env).status).toBe(0);
    }
    await new Promise((res) => setTimeout(res, 2_000));
    expect(await answers(port)).toBe(false);
  });

  it("does nothing without an admin endpoint, with a remote one, or before the Service exists", () => {
    const none = run(["ci"], { LOOMWORKS_STACK_FILE: stackFile({ kubernetes: {} }), STANDIN_SERVICE: "1" });
    expect(none.status).toBe(0);
    expect(none.stdout).toContain("declares no kubernetes.postgres.adminEndpoint");
    const remote = run(["ci"], {
      LOOMWORKS_STACK_FILE: stackFile({ kubernetes: { postgres: { adminEndpoint: "10.0.0.5:5432" } } }),
      STANDIN_SERVICE: "1",
    });
    expect(remote.stdout).toContain("is not local");
    const first = run(["ci"], {
      LOOMWORKS_STACK_FILE: stackFile({ kubernetes: { postgres: { adminEndpoint: "127.0.0.1:25999" } } }),
      STANDIN_SERVICE: "0",
    });
    expect(first.status).toBe(0);
    expect(first.stdout).toContain("no postgres Service in namespace loomworks yet");
  });
});
