/**
 * An S3-compatible server for the offsite-backup tests: testkit/s3-server (gofakes3, in memory, one
 * bucket) built with Go from its module on first use, served over HTTPS (pgBackRest speaks only
 * HTTPS to S3) with a throw-away self-signed certificate, on a free 127.0.0.1 port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mustRun, runCommand } from "../lib/process/run";

const SOURCE_DIR = path.join(__dirname, "s3-server");
const INSTALL_HINT = "Go 1.26 or later must be on PATH (README: set-up), and openssl (./scripts/setup.sh)";

export interface S3Server {
  /** `localhost:<port>`: pgBackRest's `repo2-s3-endpoint`. */
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
}

/** Builds the server once per source version (cached under the temporary directory). */
async function serverBinary(): Promise<string> {
  const hash = createHash("sha256");
  for (const name of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(path.join(SOURCE_DIR, name)));
  const bin = path.join(os.tmpdir(), `loomworks-s3-server-${hash.digest("hex").slice(0, 12)}`);
  if (existsSync(bin)) return bin;
  const go = await runCommand("go", ["build", "-o", `${bin}.tmp`, "."], {
    cwd: SOURCE_DIR,
    timeoutMs: 10 * 60_000,
  });
  if (go.code !== 0) throw new Error(`go build testkit/s3-server failed (${INSTALL_HINT}):\n${go.stderr}`);
  await fs.rename(`${bin}.tmp`, bin);
  return bin;
}

export async function startS3Server(bucket = "backups"): Promise<S3Server> {
  const bin = await serverBinary();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-s3-"));
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  await mustRun("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
    ...["-keyout", key, "-out", cert, "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
  ]);
  const portFile = path.join(dir, "port");
  const child: ChildProcess = spawn(
    bin,
    ["-listen", "127.0.0.1:0", "-cert", cert, "-key", key, "-bucket", bucket, "-port-file", portFile],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 30_000;
  let port = "";
  while (!port) {
    if (child.exitCode !== null) throw new Error(`the S3 test server exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`the S3 test server did not start: ${stderr}`);
    port = (await fs.readFile(portFile, "utf8").catch(() => "")).trim();
    if (!port) await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint: `localhost:${port}`,
    bucket,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
