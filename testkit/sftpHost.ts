/**
 * A private SFTP host for the offsite-backup tests: Debian's sshd on a free 127.0.0.1 port with its
 * own host key, configuration and authorized key in a temporary directory (key authentication only,
 * one allowed user), and its directory mounted here with sshfs, as an operator mounts an offsite
 * SFTP host for a `type: path` repository (pgBackRest 2.45 has no native SFTP).
 *
 * Needs root (sshd switches to the login user; the mount is shared with that user through
 * allow_other) and /dev/fuse.
 */
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mustRun, runCommand } from "../lib/process/run";
import { findFreePort } from "./cluster";

const SSHD = "/usr/sbin/sshd";
const INSTALL_HINT =
  "install Debian's openssh-server and sshfs (./scripts/setup.sh installs them: apt-get install openssh-server sshfs)";

export interface SftpHost {
  port: number;
  /** The directory the SFTP user works in ("the remote host's disk"). */
  remoteDir: string;
  /** known_hosts line file for `[127.0.0.1]:<port>` (strict host key checking). */
  knownHostsFile: string;
  clientKeyFile: string;
  /** Mounts `remoteDir` at `mountPoint` with sshfs, its files shown as owned by `uid`:`gid`. */
  mount(mountPoint: string, owner: { uid: number; gid: number }): Promise<void>;
  /** Unmounts it (no error when it is not mounted). */
  unmount(): Promise<void>;
  /** Unmounts, stops sshd and removes the temporary directory. */
  stop(): Promise<void>;
}

async function commandExists(file: string): Promise<boolean> {
  return (await runCommand("sh", ["-c", `command -v ${file}`], { timeoutMs: 10_000 })).code === 0;
}

/** Starts the SFTP host; `user` logs in with the generated client key and owns `remoteDir`. */
export async function startSftpHost(user: string): Promise<SftpHost> {
  const missing = [
    existsSync(SSHD) ? "" : SSHD,
    (await commandExists("sshfs")) ? "" : "sshfs",
    (await commandExists("fusermount3")) ? "" : "fusermount3",
    existsSync("/dev/fuse") ? "" : "/dev/fuse",
  ].filter(Boolean);
  if (missing.length) throw new Error(`SFTP test host: missing ${missing.join(", ")}; ${INSTALL_HINT}`);

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-sftp-host-"));
  await fs.chmod(dir, 0o755);
  const file = (name: string) => path.join(dir, name);
  const remoteDir = file("remote");
  await fs.mkdir(remoteDir, { mode: 0o700 });
  await mustRun("chown", [user, remoteDir]);
  for (const key of ["host_key", "client_key"]) {
    await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", file(key)]);
  }
  await fs.copyFile(file("client_key.pub"), file("authorized_keys"));
  const port = await findFreePort(42000 + Math.floor(Math.random() * 2000));
  await fs.writeFile(
    file("sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${file("host_key")}`,
      `PidFile ${file("sshd.pid")}`,
      `AuthorizedKeysFile ${file("authorized_keys")}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      // PAM's account check, so that a system user without a password (postgres: "!") may log in by key.
      "UsePAM yes",
      "StrictModes no",
      `AllowUsers ${user}`,
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const hostKey = (await fs.readFile(file("host_key.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
  await fs.writeFile(file("known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  // sshd's privilege separation directory (the package's service creates it at boot).
  await fs.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  await mustRun(SSHD, ["-f", file("sshd_config"), "-E", file("sshd.log")]);
  // The daemonized sshd writes its pid file after the command has returned: wait for it (a loaded
  // machine takes a while).
  const readPid = async () => Number((await fs.readFile(file("sshd.pid"), "utf8").catch(() => "")).trim());
  let pid = await readPid();
  for (let i = 0; i < 100 && !(Number.isInteger(pid) && pid > 0); i++) {
    await new Promise((r) => setTimeout(r, 100));
    pid = await readPid();
  }
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new Error(`sshd did not start: ${await fs.readFile(file("sshd.log"), "utf8").catch(() => "")}`);
  }

  let mountPoint: string | undefined;
  const host: SftpHost = {
    port,
    remoteDir,
    knownHostsFile: file("known_hosts"),
    clientKeyFile: file("client_key"),
    async mount(at, owner) {
      const options = [
        "allow_other",
        "default_permissions",
        `uid=${owner.uid}`,
        `gid=${owner.gid}`,
        `IdentityFile=${file("client_key")}`,
        `Port=${port}`,
        `UserKnownHostsFile=${file("known_hosts")}`,
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
      ];
      await mustRun("sshfs", ["-o", options.join(","), `${user}@127.0.0.1:${remoteDir}`, at]);
      mountPoint = at;
    },
    async unmount() {
      if (!mountPoint) return;
      await runCommand("fusermount3", ["-u", "-z", mountPoint], { timeoutMs: 30_000 });
      mountPoint = undefined;
    },
    async stop() {
      await host.unmount();
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        /* already gone */
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return host;
}
