/**
 * Throw-away certificates made with openssl for the TLS tests: a CA and a certificate it signs
 * for the given names (a wildcard such as `*.loomworks.test` among them).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { runCommand } from "../../lib/process/run";

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await runCommand("openssl", args).catch((err: Error) => {
    throw new Error(`openssl is not installed (${err.message}): apt-get install openssl`);
  });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A CA and a certificate for `names`, signed by it, valid for two days, under `dir`. */
export async function makeTestCertificates(dir: string, names: string[]): Promise<TestCertificates> {
  await fs.mkdir(dir, { recursive: true });
  const f = (name: string): string => path.join(dir, name);
  await openssl(
    ["req", "-x509", ...EC_KEY, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2"].concat([
      "-subj",
      "/CN=Loomworks test CA",
    ]),
  );
  await openssl([
    "req",
    ...EC_KEY,
    "-keyout",
    f("site.key"),
    "-out",
    f("site.csr"),
    "-subj",
    `/CN=${names[0]}`,
  ]);
  await fs.writeFile(f("site.ext"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    f("site.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    f("site.ext"),
    "-out",
    f("site.crt"),
  ]);
  return { caFile: f("ca.crt"), certFile: f("site.crt"), keyFile: f("site.key") };
}
