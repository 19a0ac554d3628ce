/**
 * The router's nginx configuration renderer (lib/router/config.ts): maps generated from the
 * declared tenants, preview hosts, the headers every proxied location sets, refusal of anything
 * that could smuggle nginx syntax in, and hash sizing. nginx itself checks the rendered files in
 * test/integration/router.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  hashSizing,
  nginxHashEltSize,
  renderRouterConfig,
  routerOptionsProblems,
  routerPaths,
  routerUrl,
  tenantRoutes,
  upstreamProblem,
  type RouterOptions,
  type RouterTenant,
} from "../../lib/router/config";

const base: RouterOptions = {
  stateDir: "/var/lib/loomworks",
  domain: "loom.test",
  port: 8080,
  odooHttp: "127.0.0.1:8069",
  odooWebsocket: "127.0.0.1:8072",
  tenants: [
    { subdomain: "umbrella", state: "active" },
    { subdomain: "acme", state: "active", preview: true },
    { subdomain: "globex", state: "suspended" },
    { subdomain: "initech", state: "archived" },
  ],
};

/** The body of the first `map <source> <variable> { ... }` for `variable`, one entry per line. */
function mapEntries(text: string, variable: string): string[] {
  const m = new RegExp(`map \\S+ \\$${variable} \\{\\n([\\s\\S]*?)\\n    \\}`).exec(text);
  if (!m) throw new Error(`no map for $${variable}`);
  return m[1].split("\n").map((l) => l.trim());
}

/** Each `location ... { ... }` block of the configuration (nginx blocks nest at most one level here). */
function locations(text: string): Array<{ name: string; body: string }> {
  const out: Array<{ name: string; body: string }> = [];
  const re = /^ {8}location ([^{]+)\{\n([\s\S]*?)^ {8}\}/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ name: m[1].trim(), body: m[2] });
  return out;
}

const REQUIRED_HEADERS = [
  "proxy_set_header Host $host:8080;",
  "proxy_set_header X-Forwarded-Host $host:8080;",
  "proxy_set_header X-Forwarded-For $remote_addr;",
  "proxy_set_header X-Forwarded-Proto $scheme;",
  "proxy_set_header X-Forwarded-Port 8080;",
  "proxy_set_header X-Real-IP $remote_addr;",
  'proxy_set_header X-Odoo-dbfilter "^${loomworks_database}${loomworks_dollar}";',
  'proxy_set_header Forwarded "";',
  'proxy_set_header X-Forwarded-Prefix "";',
];

describe("renderRouterConfig: maps", () => {
  const r = renderRouterConfig(base);

  it("maps every declared host to its database, sorted, the preview host to the preview database", () => {
    expect(mapEntries(r.text, "loomworks_database")).toEqual([
      'default "";',
      "acme.loom.test acme;",
      "acme--preview.loom.test acme--preview;",
      "globex.loom.test globex;",
      "initech.loom.test initech;",
      "umbrella.loom.test umbrella;",
    ]);
    expect(r.tenantCount).toBe(4);
    expect(r.hostCount).toBe(5);
  });

  it("maps every declared host to its routing class, unknown by default", () => {
    expect(mapEntries(r.text, "loomworks_class")).toEqual([
      "default unknown;",
      "acme.loom.test active;",
      "acme--preview.loom.test active;",
      "globex.loom.test suspended;",
      "initech.loom.test archived;",
      "umbrella.loom.test active;",
    ]);
  });

  it("lists the declared hosts as the tenant server's names, and keeps a proxy-free default server", () => {
    expect(r.text).toContain("        server_name acme.loom.test acme--preview.loom.test;\n");
    expect(r.text).toContain("        server_name umbrella.loom.test;\n");
    const defaultServer = /server \{\n\s+listen 127\.0\.0\.1:8080 default_server;[\s\S]*?\n {4}\}\n/.exec(
      r.text,
    )?.[0];
    expect(defaultServer).toBeDefined();
    expect(defaultServer).toContain("return 404;");
    expect(defaultServer).not.toMatch(/proxy_pass|upstream/);
  });

  it("renders the same text whatever the order of the tenants", () => {
    const reversed = renderRouterConfig({ ...base, tenants: [...base.tenants].reverse() });
    expect(reversed.text).toBe(r.text);
    expect(reversed.hash).toBe(r.hash);
    expect(renderRouterConfig({ ...base, port: 8081 }).hash).not.toBe(r.hash);
  });

  it("fills every placeholder and quotes every path", () => {
    expect(r.text).not.toContain("{{");
    const paths = routerPaths(base.stateDir);
    expect(r.text).toContain(`pid "${paths.pidFile}";`);
    expect(r.text).toContain(`if (-f "${paths.maintenanceDir}/$loomworks_database")`);
    expect(r.text).toContain(`alias "${paths.htmlDir}/503.html";`);
    const spaced = renderRouterConfig({ ...base, stateDir: "/srv/loom works/state" });
    expect(spaced.text).toContain('error_log "/srv/loom works/state/router/logs/error.log" notice;');
  });

  it("renders no tenant server and no upstream without tenants", () => {
    const empty = renderRouterConfig({ ...base, tenants: [] });
    expect(empty.tenantCount).toBe(0);
    expect(empty.text).not.toMatch(/proxy_pass|upstream loomworks|server_name [a-z]/);
    expect(mapEntries(empty.text, "loomworks_database")).toEqual(['default "";', ""]);
  });

  it("routes nothing to the ERP when every tenant is suspended, archived or restoring (classes only)", () => {
    const states = ["suspended", "archived", "restoring"] as const;
    const all = renderRouterConfig({
      ...base,
      tenants: base.tenants.map((t, k) => ({ ...t, state: states[k % 3] })),
    });
    expect(mapEntries(all.text, "loomworks_class").filter((l) => / active;$/.test(l))).toEqual([]);
  });
});

describe("renderRouterConfig: proxied locations", () => {
  const r = renderRouterConfig(base);
  const proxied = locations(r.text).filter((l) => l.body.includes("proxy_pass"));

  it("proxies / to the HTTP upstream and /websocket to the WebSocket upstream", () => {
    expect(proxied.map((l) => l.name)).toEqual(["/", "/websocket"]);
    expect(r.text).toMatch(/upstream loomworks_odoo_http \{\n\s+server 127\.0\.0\.1:8069;/);
    expect(r.text).toMatch(/upstream loomworks_odoo_websocket \{\n\s+server 127\.0\.0\.1:8072;/);
    expect(proxied[0].body).toContain("proxy_pass http://loomworks_odoo_http;");
    expect(proxied[1].body).toContain("proxy_pass http://loomworks_odoo_websocket;");
  });

  it("repeats every forwarding header in every proxied location, once each", () => {
    for (const loc of proxied) {
      for (const header of REQUIRED_HEADERS) {
        expect(loc.body.split(header).length - 1, `${loc.name}: ${header}`).toBe(1);
      }
      expect(loc.body).not.toMatch(/\$http_x_forwarded|\$proxy_add_x_forwarded_for|\$http_host/);
    }
  });

  it("upgrades /websocket with a long read timeout", () => {
    const ws = proxied[1].body;
    expect(ws).toContain("proxy_http_version 1.1;");
    expect(ws).toContain("proxy_set_header Upgrade $http_upgrade;");
    expect(ws).toContain("proxy_set_header Connection $loomworks_connection_upgrade;");
    expect(ws).toContain("proxy_read_timeout 3600s;");
  });

  it("checks host mismatch, unknown tenant, class and maintenance before proxying", () => {
    for (const loc of proxied) {
      const order = [
        "if ($loomworks_host_mismatch)",
        'if ($loomworks_database = "")',
        "if ($loomworks_class != active)",
        "if (-f ",
        "proxy_pass",
      ].map((s) => loc.body.indexOf(s));
      expect(order.every((at) => at >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    }
  });

  it("forwards the bare $host on port 80 and $host:<public port> otherwise", () => {
    const on80 = renderRouterConfig({ ...base, port: 8080, publicPort: 80 });
    expect(on80.text).toContain("proxy_set_header X-Forwarded-Host $host;");
    const mapped = renderRouterConfig({ ...base, port: 8080, publicPort: 9443 });
    expect(mapped.text).toContain("proxy_set_header Host $host:9443;");
    expect(mapped.text).toContain("listen 127.0.0.1:8080 default_server;");
  });

  it("sets the workers' user only when asked", () => {
    expect(r.text).toContain("# user: not set");
    expect(renderRouterConfig({ ...base, workerUser: "www-data" }).text).toMatch(/^user www-data;$/m);
  });
});

describe("preview hosts", () => {
  const t: RouterTenant = { subdomain: "acme", state: "active" };

  it("adds <sub>--preview.<domain>, serving <sub>--preview, when the tenant or the default asks for it", () => {
    expect(tenantRoutes(t, "loom.test")).toEqual([{ host: "acme.loom.test", database: "acme" }]);
    expect(tenantRoutes(t, "loom.test", true)).toEqual([
      { host: "acme.loom.test", database: "acme" },
      { host: "acme--preview.loom.test", database: "acme--preview" },
    ]);
    expect(tenantRoutes({ ...t, preview: false }, "loom.test", true)).toHaveLength(1);
    expect(tenantRoutes({ ...t, preview: true }, "loom.test", false)).toHaveLength(2);
  });

  it("routes preview hosts like their tenant (same class), to the preview database", () => {
    const r = renderRouterConfig({ ...base, previews: true });
    const classes = mapEntries(r.text, "loomworks_class");
    expect(classes).toContain("globex--preview.loom.test suspended;");
    expect(classes).toContain("umbrella--preview.loom.test active;");
    expect(mapEntries(r.text, "loomworks_database")).toContain("globex--preview.loom.test globex--preview;");
    expect(r.text).toContain("        server_name globex.loom.test globex--preview.loom.test;\n");
  });

  it("refuses a subdomain whose preview label would exceed 63 characters", () => {
    const long = "a".repeat(55);
    expect(routerOptionsProblems({ ...base, tenants: [{ subdomain: long, state: "active" }] })).toEqual([]);
    const problems = routerOptionsProblems({
      ...base,
      tenants: [{ subdomain: long, state: "active", preview: true }],
    });
    expect(problems).toEqual([
      { property: "tenants[0].subdomain", reason: expect.stringMatching(/longer than 63/) },
    ]);
    expect(
      routerOptionsProblems({
        ...base,
        tenants: [{ subdomain: "a".repeat(54), state: "active", preview: true }],
      }),
    ).toEqual([]);
  });
});

describe("refusing what could inject nginx syntax", () => {
  const problemsFor = (o: Partial<RouterOptions>): string[] =>
    routerOptionsProblems({ ...base, ...o }).map((p) => p.property);

  it("refuses bad subdomains, naming the entry", () => {
    const bad = [
      "Acme",
      "a--b",
      "-acme",
      "acme-",
      "acme;",
      "ac me",
      "acme.evil",
      "a\nb",
      "acme}",
      "$host",
      "",
      "a".repeat(64),
      "acme\u00e9",
    ];
    for (const subdomain of bad) {
      const problems = routerOptionsProblems({ ...base, tenants: [{ subdomain, state: "active" }] });
      expect(
        problems.map((p) => p.property),
        JSON.stringify(subdomain),
      ).toEqual(["tenants[0].subdomain"]);
      expect(() => renderRouterConfig({ ...base, tenants: [{ subdomain, state: "active" }] })).toThrow(
        /invalid router options:\n {2}tenants\[0\]\.subdomain/,
      );
    }
  });

  it("refuses duplicate tenants and unknown states", () => {
    expect(problemsFor({ tenants: [...base.tenants, { subdomain: "acme", state: "active" }] })).toEqual([
      "tenants[4].subdomain",
    ]);
    expect(problemsFor({ tenants: [{ subdomain: "acme", state: "restoring" }] })).toEqual([]);
    expect(problemsFor({ tenants: [{ subdomain: "acme", state: "deleted" as never }] })).toEqual([
      "tenants[0].state",
    ]);
  });

  it("refuses bad upstreams", () => {
    for (const upstream of [
      "127.0.0.1:80; return 200",
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "unix:/run/odoo.sock",
      "odoo:8069 backup",
      "http://odoo:8069",
      "1.2.3:8069",
      "odoo{}:8069",
      "",
    ]) {
      expect(upstreamProblem(upstream), upstream).toBeDefined();
      expect(problemsFor({ odooHttp: upstream }), upstream).toEqual(["odooHttp"]);
      expect(problemsFor({ odooWebsocket: upstream }), upstream).toEqual(["odooWebsocket"]);
    }
    for (const upstream of [
      "127.0.0.1:8069",
      "odoo:8069",
      "Odoo.Internal:8072",
      "[::1]:8069",
      "10.0.0.5:1",
    ]) {
      expect(upstreamProblem(upstream), upstream).toBeUndefined();
    }
  });

  it("refuses bad domains, ports, paths and directives", () => {
    for (const domain of [
      "Loom.test",
      "loom.test.",
      "",
      "loom_test",
      "loom;test",
      "loom test",
      "-loom.test",
      "x".repeat(254),
    ]) {
      expect(problemsFor({ domain }), domain).toEqual(["domain"]);
    }
    for (const stateDir of [
      "relative/dir",
      "/srv/$host",
      '/srv/"x',
      "/srv/a;b",
      "/srv/a{b}",
      "/srv/a\nb",
      "/srv/a#b",
      "/srv/a\\b",
    ]) {
      expect(problemsFor({ stateDir }), stateDir).toEqual(["stateDir"]);
    }
    expect(problemsFor({ port: 0 })).toEqual(["port"]);
    expect(problemsFor({ port: 8080.5 })).toEqual(["port"]);
    expect(problemsFor({ publicPort: 70000 })).toEqual(["publicPort"]);
    expect(problemsFor({ listenAddress: "0.0.0.0; include /etc/passwd" })).toEqual(["listenAddress"]);
    expect(problemsFor({ listenAddress: "localhost" })).toEqual(["listenAddress"]);
    expect(problemsFor({ listenAddress: "*" })).toEqual([]);
    expect(problemsFor({ listenAddress: "[::1]" })).toEqual([]);
    expect(problemsFor({ workerUser: "www-data; daemon off" })).toEqual(["workerUser"]);
    expect(problemsFor({ workerProcesses: 0 })).toEqual(["workerProcesses"]);
    expect(problemsFor({ clientMaxBodySize: "1g; return 200" })).toEqual(["clientMaxBodySize"]);
  });

  it("reports every problem at once", () => {
    const problems = routerOptionsProblems({
      ...base,
      domain: "BAD",
      port: -1,
      tenants: [
        { subdomain: "ok-one", state: "active" },
        { subdomain: "Bad", state: "active" },
      ],
    });
    expect(problems.map((p) => p.property)).toEqual(["domain", "port", "tenants[1].subdomain"]);
  });
});

describe("hashSizing", () => {
  it("leaves room in a bucket for 8 of the longest keys, on cache-line multiples", () => {
    const keys = ["a.loom.test", "much-longer-tenant-name--preview.loom.test"];
    const s = hashSizing(keys);
    expect(s.bucketSize % 64).toBe(0);
    expect(s.bucketSize).toBeGreaterThanOrEqual(8 * nginxHashEltSize(keys[1]) + 8);
    expect(s.bucketSize).toBeLessThan(8 * nginxHashEltSize(keys[1]) + 8 + 64);
    expect(s.maxSize).toBe(512);
  });

  it("grows the table with the number of host names: twice the count", () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `tenant${i}.localhost`);
    expect(hashSizing(keys).maxSize).toBe(40_000);
    expect(hashSizing([]).maxSize).toBe(512);
    expect(hashSizing([]).bucketSize).toBeGreaterThanOrEqual(64);
  });

  it("sizes the longest legal host name (253 characters)", () => {
    const longest = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(longest).toHaveLength(253);
    expect(nginxHashEltSize(longest)).toBe(8 + 256);
    expect(hashSizing([longest]).bucketSize).toBe(2176); // 8 × 264 + 8 = 2120, rounded up to 64
  });

  it("is what the configuration uses, for the map and the server names", () => {
    const tenants = Array.from({ length: 10_000 }, (_, i) => ({
      subdomain: `t${i}`,
      state: "active" as const,
    }));
    const r = renderRouterConfig({ ...base, tenants, previews: true });
    expect(r.hostCount).toBe(20_000);
    expect(r.text).toContain(`map_hash_max_size ${r.mapHash.maxSize};`);
    expect(r.text).toContain(`map_hash_bucket_size ${r.mapHash.bucketSize};`);
    expect(r.text).toContain(`server_names_hash_max_size ${r.serverNamesHash.maxSize};`);
    expect(r.text).toContain(`server_names_hash_bucket_size ${r.serverNamesHash.bucketSize};`);
    expect(r.mapHash.maxSize).toBe(40_000);
    expect(r.serverNamesHash.maxSize).toBe(40_002);
  });
});

describe("routerUrl and routerPaths", () => {
  it("gives the base URL, without :80", () => {
    expect(routerUrl("localhost", 8080)).toBe("http://localhost:8080/");
    expect(routerUrl("loom.example", 80)).toBe("http://loom.example/");
  });

  it("keeps everything under <stateDir>/router", () => {
    const p = routerPaths("/srv/state/");
    for (const value of Object.values(p)) expect(value.startsWith("/srv/state")).toBe(true);
    expect(p.config).toBe("/srv/state/router/nginx.conf");
    expect(p.maintenanceDir).toBe("/srv/state/router/maintenance");
  });
});
