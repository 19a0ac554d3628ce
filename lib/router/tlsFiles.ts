/**
 * The router's certificate and key, read before nginx is asked to load them (the provider's check,
 * i.e. at preview): each file readable, the certificate PEM, the key the certificate's, the
 * certificate valid now and naming every tenant host (a wildcard `*.<domain>`, or the names one by
 * one: TLS clients refuse a wildcard directly under a single-label domain such as `*.localhost`).
 * nginx itself would only say "cannot load certificate" at start or reload.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RouterProblem, RouterTls } from "./config";

function readPem(file: string, what: string): { pem?: Buffer; problem?: string } {
  try {
    return { pem: readFileSync(file) };
  } catch (err) {
    return {
      problem: `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    };
  }
}

/** Every problem with the certificate and key files (empty: nginx can serve them for these hosts). */
export function routerTlsFileProblems(
  tls: RouterTls,
  hosts: readonly string[],
  now = new Date(),
): RouterProblem[] {
  const problems: RouterProblem[] = [];
  const add = (property: string, reason: string): void => {
    problems.push({ property: `tls.${property}`, reason });
  };
  const certRead = readPem(tls.certFile, "certificate");
  const keyRead = readPem(tls.keyFile, "private key");
  if (certRead.problem) add("certFile", certRead.problem);
  if (keyRead.problem) add("keyFile", keyRead.problem);
  let cert: X509Certificate | undefined;
  if (certRead.pem) {
    try {
      cert = new X509Certificate(certRead.pem);
    } catch {
      add("certFile", `${tls.certFile} is not a PEM certificate`);
    }
  }
  let key: KeyObject | undefined;
  if (keyRead.pem) {
    try {
      key = createPrivateKey(keyRead.pem);
    } catch {
      add("keyFile", `${tls.keyFile} is not an unencrypted PEM private key`);
    }
  }
  if (cert && key && !cert.checkPrivateKey(key)) {
    add("keyFile", `${tls.keyFile} is not the private key of the certificate ${tls.certFile}`);
  }
  if (cert) {
    if (new Date(cert.validTo) <= now)
      add("certFile", `the certificate ${tls.certFile} expired on ${cert.validTo}`);
    else if (new Date(cert.validFrom) > now) {
      add("certFile", `the certificate ${tls.certFile} is not valid before ${cert.validFrom}`);
    }
    const uncovered = hosts.filter((h) => cert.checkHost(h) === undefined);
    if (uncovered.length > 0) {
      const shown = uncovered.slice(0, 5).join(", ") + (uncovered.length > 5 ? ", ..." : "");
      add(
        "certFile",
        `the certificate ${tls.certFile} does not cover ${uncovered.length} tenant host(s): ${shown} ` +
          `(it names ${cert.subjectAltName ?? cert.subject})`,
      );
    }
  }
  return problems;
}

/** sha256 of the certificate and key files (RouterTls.filesHash), undefined when one cannot be read. */
export function routerTlsFilesHash(tls: Pick<RouterTls, "certFile" | "keyFile">): string | undefined {
  try {
    const h = createHash("sha256");
    for (const file of [tls.certFile, tls.keyFile]) h.update(readFileSync(file)).update("\0");
    return h.digest("hex");
  } catch {
    return undefined;
  }
}
