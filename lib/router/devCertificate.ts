/**
 * The development stack's self-signed certificate for the router (docs/developer/local-setup.md):
 * made with openssl (Node's crypto cannot sign an X.509 certificate) when missing, expiring within
 * RENEW_BEFORE_DAYS, not matching its key or not naming every requested host; otherwise reused.
 * Both files are written 0600 in a 0700 directory, like everything under the state directory
 * (the nginx master reads them as the user that starts it).
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand } from "../process/run";
import { writePrivateFile } from "../fs/privateFile";
import { routerTlsFileProblems } from "./tlsFiles";

const VALID_DAYS = 825;
const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

export interface DevCertificateRequest {
  certFile: string;
  keyFile: string;
  /** The base domain: the certificate names `*.<domain>` and `<domain>`. */
  domain: string;
  /**
   * Hosts named one by one as well: clients refuse a wildcard directly under a single-label domain
   * (`*.localhost`), so the dev stack's tenant hosts are listed.
   */
  hosts: readonly string[];
}

export interface DevCertificateResult {
  action: "created" | "reused";
  /** Why a new one was made (the reused certificate's problems), when created over an old one. */
  reason?: string;
}

/** The subjectAltName list: the wildcard, the domain, then each host (sorted, no repeats). */
export function devCertificateNames(domain: string, hosts: readonly string[]): string[] {
  const rest = [...new Set(hosts)].filter((h) => h !== domain).sort();
  return [`*.${domain}`, domain, ...rest];
}

/** Makes the certificate and key unless a usable pair is already there. */
export async function ensureDevCertificate(req: DevCertificateRequest): Promise<DevCertificateResult> {
  const names = devCertificateNames(req.domain, req.hosts);
  const renewBy = new Date(Date.now() + RENEW_BEFORE_DAYS * DAY_MS);
  const exists = await Promise.all(
    [req.certFile, req.keyFile].map((f) =>
      fs.access(f).then(
        () => true,
        () => false,
      ),
    ),
  );
  let reason: string | undefined;
  if (exists.every(Boolean)) {
    const problems = routerTlsFileProblems(
      { certFile: req.certFile, keyFile: req.keyFile, port: 1 },
      names.slice(1),
      renewBy,
    );
    if (problems.length === 0) return { action: "reused" };
    reason = problems.map((p) => p.reason).join("; ");
  }
  await makeSelfSigned(req, names);
  return { action: "created", ...(reason ? { reason } : {}) };
}

async function makeSelfSigned(req: DevCertificateRequest, names: string[]): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-devcert-"));
  try {
    const key = path.join(work, "key.pem");
    const cert = path.join(work, "cert.pem");
    const r = await runCommand("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      String(VALID_DAYS),
      "-subj",
      `/O=Loomworks development/CN=*.${req.domain}`,
      "-addext",
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
    ]).catch((err: Error) => {
      throw new Error(`openssl is not installed (${err.message}); scripts/setup.sh installs it`);
    });
    if (r.code !== 0) throw new Error(`openssl could not make the dev certificate: ${r.stderr.trim()}`);
    await writePrivateFile(req.keyFile, await fs.readFile(key, "utf8"));
    await writePrivateFile(req.certFile, await fs.readFile(cert, "utf8"));
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
