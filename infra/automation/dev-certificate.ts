/**
 * `node bin/infra/automation/dev-certificate.js [--stack NAME]` (scripts/dev-up.sh, before `up`):
 * when the stack's router has TLS (`platform.routerTls`), makes the self-signed certificate and key
 * it names, for `*.<domain>` and every declared tenant host, or reuses the ones there
 * (lib/router/devCertificate.ts). A stack without `routerTls` is left alone. For development
 * stacks only: a real certificate is never overwritten because it is reused while it is valid,
 * but production certificates come from a CA, not from this.
 */
import * as path from "node:path";
import { parseStackConfig } from "../config/load";
import { ensureDevCertificate } from "../../lib/router/devCertificate";
import { tenantRoutes } from "../../lib/router/config";
import { openStack, projectDir } from "./workspace";

async function main(argv: string[]): Promise<void> {
  const stackFlag = argv.indexOf("--stack");
  const stackName = stackFlag >= 0 ? argv[stackFlag + 1] : "dev";
  if (!stackName) throw new Error("usage: dev-certificate.js [--stack NAME]");
  const stack = await openStack({ stackName });
  const all = await stack.getAllConfig();
  const value = (key: string): unknown => {
    const entry = all[`loomworks:${key}`];
    if (entry === undefined) return undefined;
    try {
      return JSON.parse(entry.value) as unknown;
    } catch {
      return entry.value; // not JSON: parseStackConfig reports it as not a map
    }
  };
  const config = parseStackConfig({
    platform: value("platform"),
    tiers: value("tiers"),
    tenants: value("tenants"),
  });
  const { routerTls, domain } = config.platform;
  if (!routerTls) {
    console.log(`stack ${stackName}: no platform.routerTls, no certificate needed`);
    return;
  }
  const certFile = path.resolve(projectDir, routerTls.certFile);
  const keyFile = path.resolve(projectDir, routerTls.keyFile);
  const hosts = config.tenants.flatMap((t) => tenantRoutes(t, domain).map((r) => r.host));
  const result = await ensureDevCertificate({ certFile, keyFile, domain, hosts });
  console.log(
    `stack ${stackName}: router certificate ${certFile} ${result.action}` +
      (result.reason ? ` (${result.reason})` : ""),
  );
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`dev-certificate: ${err.message}`);
  process.exit(1);
});
