/**
 * The router's TLS: the rendered nginx configuration with and without `tls`
 * (lib/router/config.ts), the option and file checks with their messages (lib/router/tlsFiles.ts,
 * the provider's check), and `platform.routerTls` in the stack schema. nginx and curl serve and
 * verify it in test/integration/router-tls.test.ts.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStackConfig, ConfigError } from "../../infra/config/load";
import {
  renderRouterConfig,
  routerOptionsProblems,
  routerUrl,
  type RouterOptions,
} from "../../lib/router/config";
import { checkLocalRouter } from "../../lib/router/provider";
import { routerTlsFileProblems } from "../../lib/router/tlsFiles";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates";

const TLS = {
  certFile: "/etc/loomworks/tls/router.crt",
  keyFile: "/etc/loomworks/tls/router.key",
  port: 8443,
};
const base: RouterOptions = {
  stateDir: "/srv/loomworks",
  domain: "loom.test",
  port: 8080,
  odooHttp: "erp.internal:8069",
  odooWebsocket: "erp.internal:8072",
  tenants: [
    { subdomain: "acme", state: "active", preview: true },
    { subdomain: "globex", state: "suspended" },
  ],
};
const HSTS_YEAR = 'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;';

/** The `server { ... }` blocks of the configuration, by their first listen line. */
function servers(text: string): string[] {
  return [...text.matchAll(/^ {4}server \{\n([\s\S]*?)^ {4}\}/gm)].map((m) => m[1]);
}

describe("renderRouterConfig without tls", () => {
  it("listens on the HTTP port only: no ssl, no HSTS, no redirect", () => {
    const { text } = renderRouterConfig(base);
    expect(text).not.toMatch(/ssl|Strict-Transport-Security|return 308/);
    expect(text.match(/^\s*listen .*;$/gm)).toEqual([
      "        listen 127.0.0.1:8080 default_server;",
      "        listen 127.0.0.1:8080;",
    ]);
    expect(text).toContain("proxy_set_header X-Forwarded-Proto $scheme;");
  });
});

describe("renderRouterConfig with tls", () => {
  const { text } = renderRouterConfig({ ...base, tls: TLS });
  const [defaultServer, tenantServer, redirectServer] = servers(text);

  it("loads the certificate and key once, for every server", () => {
    expect(text).toContain(`ssl_certificate "${TLS.certFile}";`);
    expect(text).toContain(`ssl_certificate_key "${TLS.keyFile}";`);
    expect(text).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
  });

  it("keeps the 404 default server on both ports", () => {
    expect(defaultServer.match(/listen .*;/g)).toEqual([
      "listen 127.0.0.1:8080 default_server;",
      "listen 127.0.0.1:8443 ssl default_server;",
    ]);
    expect(defaultServer).toContain("return 404;");
  });

  it("serves the tenants on the HTTPS port only, with HSTS on every answer", () => {
    expect(tenantServer.match(/listen .*;/g)).toEqual(["listen 127.0.0.1:8443 ssl;"]);
    // Once for the server (proxied answers), again in each location with add_header of its own.
    expect(tenantServer.split(HSTS_YEAR).length - 1).toBe(3);
    expect(tenantServer).toContain("proxy_set_header Host $host:8443;");
    expect(tenantServer).toContain("proxy_set_header X-Forwarded-Port 8443;");
    expect(tenantServer).toContain("proxy_set_header X-Forwarded-Proto $scheme;");
  });

  it("redirects the tenants' hosts (previews included) on the HTTP port to HTTPS with the same URI", () => {
    expect(redirectServer.match(/listen .*;/g)).toEqual(["listen 127.0.0.1:8080;"]);
    expect(redirectServer).toContain("server_name acme.loom.test acme--preview.loom.test;");
    expect(redirectServer).toContain("server_name globex.loom.test;");
    expect(redirectServer).toContain("return 308 https://$host:8443$request_uri;");
    expect(redirectServer).not.toContain("Strict-Transport-Security");
    expect(redirectServer).not.toContain("proxy_pass");
  });

  it("leaves port 443 out of the redirect and the forwarded host; honours hstsMaxAgeSeconds", () => {
    const t = renderRouterConfig({ ...base, tls: { ...TLS, publicPort: 443, hstsMaxAgeSeconds: 0 } }).text;
    expect(t).toContain("return 308 https://$host$request_uri;");
    expect(t).toContain("proxy_set_header Host $host;");
    expect(t).toContain("proxy_set_header X-Forwarded-Port 443;");
    expect(t).toContain('add_header Strict-Transport-Security "max-age=0; includeSubDomains" always;');
  });

  it("gives the https URL", () => {
    expect(routerUrl("loom.test", 8443, "https")).toBe("https://loom.test:8443/");
    expect(routerUrl("loom.test", 443, "https")).toBe("https://loom.test/");
  });
});

describe("tls options refused", () => {
  it.each([
    [{ certFile: "router.crt" }, "tls.certFile: must be an absolute path"],
    [{ keyFile: '/etc/k";\nssl_verify off;' }, "tls.keyFile: may contain only"],
    [{ port: 8080 }, "tls.port: must differ from the HTTP port (both are 8080)"],
    [{ port: 0 }, "tls.port: must be an integer 1-65535"],
    [{ publicPort: 70000 }, "tls.publicPort: must be an integer 1-65535"],
    [{ hstsMaxAgeSeconds: -1 }, "tls.hstsMaxAgeSeconds: must be an integer 0-2147483647"],
  ])("%j", (override, message) => {
    const problems = routerOptionsProblems({ ...base, tls: { ...TLS, ...override } });
    expect(problems.map((p) => `${p.property}: ${p.reason}`).join("\n")).toContain(message);
    expect(() => renderRouterConfig({ ...base, tls: { ...TLS, ...override } })).toThrow(message);
  });
});

describe("the certificate and key files", () => {
  let dir: string;
  let good: TestCertificates;
  let other: TestCertificates;
  const hosts = ["acme.loom.test", "acme--preview.loom.test"];
  const reasons = (tls: Partial<typeof TLS>, now?: Date, forHosts = hosts): string[] =>
    routerTlsFileProblems(
      { ...TLS, certFile: good.certFile, keyFile: good.keyFile, ...tls },
      forHosts,
      now,
    ).map((p) => `${p.property}: ${p.reason}`);

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-tls-unit-"));
    good = await makeTestCertificates(path.join(dir, "good"), ["*.loom.test"]);
    other = await makeTestCertificates(path.join(dir, "other"), ["*.other.test"]);
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("accepts a wildcard certificate with its key", () => {
    expect(reasons({})).toEqual([]);
  });

  it("names a missing file and a file that is not PEM", async () => {
    const notPem = path.join(dir, "not.pem");
    await fs.writeFile(notPem, "hello\n");
    expect(reasons({ certFile: path.join(dir, "missing.crt") })).toEqual([
      `tls.certFile: cannot read the certificate ${path.join(dir, "missing.crt")}: ENOENT`,
    ]);
    expect(reasons({ certFile: notPem, keyFile: notPem })).toEqual([
      `tls.certFile: ${notPem} is not a PEM certificate`,
      `tls.keyFile: ${notPem} is not an unencrypted PEM private key`,
    ]);
  });

  it("refuses the key of another certificate", () => {
    expect(reasons({ keyFile: other.keyFile })).toEqual([
      `tls.keyFile: ${other.keyFile} is not the private key of the certificate ${good.certFile}`,
    ]);
  });

  it("refuses an expired certificate", () => {
    const [problem] = reasons({}, new Date(Date.now() + 10 * 86_400_000));
    expect(problem).toMatch(new RegExp(`^tls.certFile: the certificate ${good.certFile} expired on `));
  });

  it("lists the tenant hosts the certificate does not name", () => {
    expect(reasons({ certFile: other.certFile, keyFile: other.keyFile })).toEqual([
      `tls.certFile: the certificate ${other.certFile} does not cover 2 tenant host(s): ` +
        "acme.loom.test, acme--preview.loom.test (it names DNS:*.other.test)",
    ]);
  });

  it("fails the provider's check (the preview) with the file's problem", () => {
    const failures = checkLocalRouter({
      ...base,
      tenants: [...base.tenants],
      tls: { ...TLS, certFile: good.certFile, keyFile: other.keyFile },
    });
    expect(failures).toEqual([
      {
        property: "tls",
        reason: `tls.keyFile: ${other.keyFile} is not the private key of the certificate ${good.certFile}`,
      },
    ]);
  });
});

describe("platform.routerTls in the stack configuration", () => {
  const tls = { certFile: "tls/router.crt", keyFile: "tls/router.key" };

  it("defaults the HTTPS port to 8443 and HSTS to a year; absent by default", () => {
    expect(parseStackConfig({}).platform.routerTls).toBeUndefined();
    expect(parseStackConfig({ platform: { routerTls: tls } }).platform.routerTls).toEqual({
      ...tls,
      port: 8443,
      hstsMaxAgeSeconds: 31_536_000,
    });
  });

  it.each([
    [{ certFile: "a" }, 'platform: key "routerTls.keyFile"'],
    [{ ...tls, port: 8080 }, 'platform: key "routerTls.port": must differ from routerPort and postgresPort'],
    [
      { ...tls, hstsMaxAgeSeconds: -5 },
      'platform: key "routerTls.hstsMaxAgeSeconds": must be an integer from 0',
    ],
    [{ ...tls, ca: "x" }, 'platform: key "routerTls.ca"'],
    [
      { ...tls, target: "kubernetes" },
      "is for the local and docker routers; on kubernetes TLS is kubernetes.tls",
    ],
  ])("refuses %j", ({ target, ...routerTls }: Record<string, unknown>, message) => {
    let problems: readonly string[] = [];
    try {
      parseStackConfig({ platform: { routerTls, ...(target ? { target } : {}) } });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      problems = (e as ConfigError).problems;
    }
    expect(problems.join("\n")).toContain(message);
  });
});
