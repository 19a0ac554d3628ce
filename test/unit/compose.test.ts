/**
 * `npm run compose` (components/docker/compose.ts): the Compose project rendered from a dev-like and
 * a prod-like docker stack file (test/fixtures/compose/) is valid against the Compose
 * Specification's JSON schema (compose-spec.json as the `dclint` package ships it, the official file
 * of compose-spec/compose-spec), the development override too; `.env.example` names exactly the
 * variables the Compose files read; no secret of the stack file reaches any rendered file; a bad
 * stack file gives the same messages as `pulumi preview`.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import Ajv from "ajv";
import * as yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  COMPOSE_DEV_FILE,
  COMPOSE_FILE,
  ENV_EXAMPLE_FILE,
  renderCompose,
  type ComposeRender,
} from "../../components/docker/compose";
import { SECRET_PLACEHOLDER } from "../../components/docker/composeLayout";
import { HEALTHCHECKS, STOP_TIMEOUT_SECONDS } from "../../components/docker/containers";
import { ERP_IMAGE } from "../../lib/odoo/image";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { parseStackFile } from "../../infra/config/stackFile";
import { offsiteSchema } from "../../infra/config/offsite";
import { OFFSITE_CONTAINER, dockerOffsiteRepo } from "../../components/docker/config";
import { renderOffsiteRepo, type OffsiteRepo } from "../../lib/pg/offsite";
import { repoRoot } from "../../testkit/repo";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates";
import { requireTool } from "../helpers/tools";
import { sftpOffsiteSettings } from "../helpers/offsite-settings";

const requireHere = createRequire(__filename);
const schemaFile = path.join(
  path.dirname(requireHere.resolve("dclint/package.json")),
  "schemas",
  "compose.schema.json",
);
const schema = JSON.parse(readFileSync(schemaFile, "utf8")) as Record<string, unknown>;
// The file names draft-07's meta-schema by its https address; Ajv knows it by the http one.
const draft07 = requireHere("ajv/dist/refs/json-schema-draft-07.json") as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addMetaSchema({ ...draft07, $id: String(schema.$schema) });
const validate = ajv.compile(schema);

function errorsOf(doc: unknown): string[] {
  return validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
}

const fixture = (name: string) => path.join(repoRoot, "test", "fixtures", "compose", `Pulumi.${name}.yaml`);
const stackText = (name: string) => readFileSync(fixture(name), "utf8");

function render(name: string): ComposeRender {
  const config = parseStackFile(stackText(name), path.basename(fixture(name)));
  return renderCompose({ stack: name, project: "loomworks-hosting", config, checkoutDir: "../.." });
}

const fileText = (r: ComposeRender, file: string): string => {
  const found = r.files.find((f) => f.path === file);
  expect(found, file).toBeDefined();
  return (found as { content: string }).content;
};

/** `${NAME}`, `${NAME:-...}`, `${NAME:?...}` (not `$${...}`, Compose's escaped dollar). */
function interpolated(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/(\$*)\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (m[1].length % 2 === 0) names.add(m[2]);
  }
  return names;
}

function secretSources(doc: Record<string, unknown>): Set<string> {
  const secrets = (doc.secrets ?? {}) as Record<string, { environment?: string }>;
  return new Set(Object.values(secrets).flatMap((s) => (s.environment ? [s.environment] : [])));
}

const envExampleNames = (text: string): Set<string> =>
  new Set(
    text
      .split("\n")
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => l.slice(0, l.indexOf("="))),
  );

describe.each(["docker-dev", "docker-prod"])("the Compose project of %s", (stack) => {
  const r = render(stack);
  const base = yaml.load(fileText(r, COMPOSE_FILE)) as Record<string, unknown>;
  const dev = yaml.load(fileText(r, COMPOSE_DEV_FILE)) as Record<string, unknown>;

  it("is valid against the Compose Specification's schema, with its development override", () => {
    expect(errorsOf(base)).toEqual([]);
    expect(errorsOf(dev)).toEqual([]);
    expect(Object.keys(base.services as object).sort()).toEqual(["erp", "nginx", "ops", "postgres", "redis"]);
  });

  it("names in .env.example every variable the Compose files read, and nothing else", () => {
    const used = new Set([
      ...interpolated(fileText(r, COMPOSE_FILE)),
      ...interpolated(fileText(r, COMPOSE_DEV_FILE)),
      ...secretSources(base),
    ]);
    const listed = envExampleNames(fileText(r, ENV_EXAMPLE_FILE));
    expect([...listed].sort()).toEqual([...used].sort());
    expect(used.size).toBeGreaterThan(4);
  });

  it("carries no secret of the stack file, not even its stand-ins", () => {
    const secureValues = [...stackText(stack).matchAll(/secure: (\S+)/g)].map((m) => m[1]);
    for (const f of r.files) {
      for (const value of secureValues) expect(f.content, f.path).not.toContain(value);
      expect(f.content, f.path).not.toContain("secret-from-the-stack-file");
    }
  });

  it("runs the containers DockerPlatform declares: health checks, stop timeouts, start order", () => {
    const services = base.services as Record<string, Record<string, unknown>>;
    expect((services.postgres.healthcheck as { test: string[] }).test).toEqual(HEALTHCHECKS.postgres.test);
    expect((services.erp.healthcheck as { start_period: string }).start_period).toBe(
      `${HEALTHCHECKS.erp.startPeriodSeconds}s`,
    );
    expect(services.erp.stop_grace_period).toBe(`${STOP_TIMEOUT_SECONDS.erp}s`);
    expect(services.nginx.depends_on).toEqual({ erp: { condition: "service_healthy" } });
    const devErp = (dev.services as Record<string, Record<string, unknown>>).erp;
    expect(devErp.command).toEqual(["odoo", "--dev=all"]);
    expect(devErp.ports).toEqual(["127.0.0.1:5678:5678"]);
    expect(devErp.environment).toMatchObject({ LOOMWORKS_DEBUGPY: "1" });
  });
});

describe("the prod-like stack's secrets", () => {
  const r = render("docker-prod");
  const text = fileText(r, COMPOSE_FILE);
  const env = fileText(r, ENV_EXAMPLE_FILE);

  it("come from .env: AI keys by name, the repository passphrase through a secret file", () => {
    for (const name of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LOOMWORKS_BACKUP_CIPHER_PASS"])
      expect(env).toMatch(new RegExp(`^${name}=${SECRET_PLACEHOLDER}$`, "m"));
    const pgbackrest = fileText(r, "postgres/pgbackrest.conf");
    expect(pgbackrest).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    expect(pgbackrest).toMatch(/^repo1-cipher-pass=from-secret-file:\/run\/secrets\/backup-cipher-pass$/m);
    // The ops container's secrets are files: its configuration (docker inspect) holds none.
    const services = (yaml.load(text) as { services: Record<string, Record<string, unknown>> }).services;
    expect(services.ops.secrets).toEqual([
      { source: "postgres_password", target: "/run/secrets/postgres-password" },
      { source: "notify_webhook_url", target: "/run/secrets/notify-webhook-url" },
      { source: "backup_cipher_pass", target: "/run/secrets/backup-cipher-pass" },
    ]);
    expect(JSON.stringify(services.ops.environment)).not.toMatch(/PASSWORD|WEBHOOK_URL|CIPHER/);
  });

  it("schedules the ops jobs of the stack's schedule", () => {
    const schedule = JSON.parse(fileText(r, "ops/schedule.json")) as {
      jobs: { name: string; cron: string; command: string[] }[];
    };
    const byName = Object.fromEntries(schedule.jobs.map((j) => [j.name, j]));
    expect(byName["backup-full"].cron).toBe("0 2 * * 0");
    expect(byName["quota-check"].cron).toBe("*/15 * * * *");
    expect(byName["backup-diff"].command.slice(1)).toEqual([
      "/opt/loomworks/bin/infra/ops/jobs.js",
      "backup",
      "--type",
      "diff",
    ]);
  });
});

describe("the schema check", () => {
  it("rejects a broken document (so the check above can fail)", () => {
    const r = render("docker-dev");
    const doc = yaml.load(fileText(r, COMPOSE_FILE)) as { services: Record<string, Record<string, unknown>> };
    doc.services.erp.restart = 5;
    doc.services.nginx.imagee = "nginx";
    const errors = errorsOf(doc);
    expect(errors.some((e) => e.startsWith("/services/erp/restart"))).toBe(true);
    expect(errors.some((e) => e.includes("must NOT have additional properties"))).toBe(true);
  });
});

describe("the development override", () => {
  it("leaves debugpy out when development.debugpy is false", () => {
    const config = parseStackFile(stackText("docker-dev"), "Pulumi.docker-dev.yaml");
    const development = { ...config.platform.docker.development, debugpy: false };
    const r = renderCompose({
      stack: "docker-dev",
      project: "loomworks-hosting",
      config: {
        ...config,
        platform: { ...config.platform, docker: { ...config.platform.docker, development } },
      },
      checkoutDir: "../..",
    });
    const erp = (r.devOverride.services as Record<string, Record<string, unknown>>).erp;
    expect(erp.ports).toBeUndefined();
    expect(erp.environment).not.toHaveProperty("LOOMWORKS_DEBUGPY");
    expect(erp.command).toEqual(["odoo", "--dev=all"]);
    expect(errorsOf(r.devOverride)).toEqual([]);
  });
});

describe("routerTls: HTTPS on the Compose project's nginx", () => {
  let dir: string;
  let certs: TestCertificates;
  let r: ComposeRender;
  let base: { services: Record<string, Record<string, unknown>>; secrets: Record<string, unknown> };

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-compose-tls-"));
    certs = await makeTestCertificates(dir, ["*.erp.example.com"]);
    const config = parseStackFile(stackText("docker-prod"), "Pulumi.docker-prod.yaml");
    const routerTls = {
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      port: 8443,
      hstsMaxAgeSeconds: 900,
    };
    r = renderCompose({
      stack: "docker-prod",
      project: "loomworks-hosting",
      config: { ...config, platform: { ...config.platform, routerTls } },
      checkoutDir: "../..",
    });
    base = yaml.load(fileText(r, COMPOSE_FILE)) as typeof base;
  });
  afterAll(() => fsp.rm(dir, { recursive: true, force: true }));

  it("is valid against the Compose Specification's schema", () => {
    expect(errorsOf(base)).toEqual([]);
    expect(errorsOf(r.devOverride)).toEqual([]);
  });

  it("publishes 443 on routerTls.port next to 80, and mounts the certificate and the key read-only where nginx.conf reads them", () => {
    const nginx = base.services.nginx;
    expect(nginx.ports).toEqual(["0.0.0.0:80:80", "0.0.0.0:8443:443"]);
    expect(nginx.volumes).toContainEqual({
      type: "bind",
      source: `\${LOOMWORKS_ROUTER_TLS_CERT_FILE:-${certs.certFile}}`,
      target: "/var/lib/loomworks/tls/router.crt",
      read_only: true,
    });
    expect(nginx.secrets).toEqual([
      { source: "router_tls_key", target: "/var/lib/loomworks/tls/router.key" },
    ]);
    expect(base.secrets.router_tls_key).toEqual({
      file: `\${LOOMWORKS_ROUTER_TLS_KEY_FILE:-${certs.keyFile}}`,
    });
    expect(fileText(r, ENV_EXAMPLE_FILE)).toContain(`\nLOOMWORKS_ROUTER_TLS_KEY_FILE=${certs.keyFile}\n`);
    for (const file of ["nginx/nginx.conf", "nginx/nginx.dev.conf"]) {
      const conf = fileText(r, file);
      expect(conf, file).toContain('ssl_certificate "/var/lib/loomworks/tls/router.crt";');
      expect(conf, file).toContain('ssl_certificate_key "/var/lib/loomworks/tls/router.key";');
      expect(conf, file).toMatch(/listen \*:443 ssl;/);
      expect(conf, file).toContain(
        'add_header Strict-Transport-Security "max-age=900; includeSubDomains" always;',
      );
      // A tenant's plain HTTP goes to HTTPS on the published port.
      expect(conf, file).toContain("return 308 https://$host:8443$request_uri;");
    }
  });

  it("puts neither the key nor the certificate into any rendered file", async () => {
    const pemBody = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----"))[1];
    const key = pemBody(await fsp.readFile(certs.keyFile, "utf8"));
    const cert = pemBody(await fsp.readFile(certs.certFile, "utf8"));
    expect(key.length).toBeGreaterThan(20);
    for (const f of r.files) {
      expect(f.content, f.path).not.toContain(key);
      expect(f.content, f.path).not.toContain(cert);
      expect(f.content, f.path).not.toContain("PRIVATE KEY");
    }
  });
});

describe("a bad stack file", () => {
  it("fails with the messages pulumi preview gives", () => {
    const platform = { target: "docker", docker: { httpPort: 70000 } };
    const tenants = { acme: { teir: "pro", adminEmail: "a@acme.example" } };
    const text = yaml.dump({
      config: { "loomworks:platform": platform, "loomworks:tenants": tenants, "loomworks:tenant": {} },
    });
    let expected: string[] = [];
    try {
      parseStackConfig({ platform, tenants });
    } catch (err) {
      expected = (err as ConfigError).problems as string[];
    }
    expect(expected.length).toBeGreaterThan(1);
    expect(() => parseStackFile(text, "Pulumi.bad.yaml")).toThrow(ConfigError);
    try {
      parseStackFile(text, "Pulumi.bad.yaml");
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        'loomworks: key "tenant": is not a known key (did you mean "tenants"?)',
        ...expected,
      ]);
    }
  });
});

/** A script's container paths moved under `dir` (it runs as root there too). */
function localized(dir: string, script: string): string {
  const local = script
    .replace(/\/etc\/loomworks\//g, `${dir}/mounted/`)
    .replace(/\/etc\/pgbackrest\//g, `${dir}/pgbackrest/`)
    .replace(/\/run\/secrets\//g, `${dir}/secrets/`)
    .replace(/\/(var\/spool|var\/log|tmp)\/pgbackrest/g, `${dir}/$1/pgbackrest`);
  expect(local).not.toContain(" /etc/");
  return local;
}

/** The mounted pgbackrest.conf and the secret files (`name` relative to /run/secrets) under `dir`. */
async function mountIn(dir: string, conf: string, secrets: Record<string, string>): Promise<void> {
  await fsp.mkdir(`${dir}/mounted`, { recursive: true });
  await fsp.mkdir(`${dir}/secrets`, { recursive: true });
  await fsp.writeFile(`${dir}/mounted/pgbackrest.conf`, conf);
  for (const [name, value] of Object.entries(secrets)) {
    await fsp.mkdir(path.dirname(`${dir}/secrets/${name}`), { recursive: true });
    await fsp.writeFile(`${dir}/secrets/${name}`, value);
  }
}

async function runSetupIn(
  dir: string,
  script: string,
  conf: string,
  secrets: Record<string, string> = {},
): Promise<SpawnSyncReturns<string>> {
  await mountIn(dir, conf, secrets);
  return spawnSync("sh", ["-c", localized(dir, script)], { encoding: "utf8" });
}

const postgresUid = (): number =>
  Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());

describe("pgbackrest-conf.sh (the postgres and ops containers' start)", () => {
  beforeAll(() => requireTool("shellcheck"));
  const prod = render("docker-prod");
  const script = fileText(prod, "postgres/pgbackrest-conf.sh");

  it("is POSIX sh and shellcheck-clean, as the ERP's secrets check", () => {
    for (const text of [
      script,
      fileText(render("docker-dev"), "postgres/pgbackrest-conf.sh"),
      fileText(prod, "erp/secrets-check.sh"),
    ]) {
      expect(text.split("\n")[0]).toBe("#!/bin/sh");
      const r = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "-"], {
        input: text,
        encoding: "utf8",
      });
      expect(r.stdout + r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });

  it("writes pgbackrest.conf for postgres, with the passphrase from the secret file", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-compose-pgbackrest-"));
    try {
      const conf = fileText(prod, "postgres/pgbackrest.conf");
      const passphrase = String.raw`p&a\ss|wo"rd$1 /x`;
      const r = await runSetupIn(dir, script, conf, { "backup-cipher-pass": passphrase });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const written = `${dir}/pgbackrest/pgbackrest.conf`;
      const text = await fsp.readFile(written, "utf8");
      expect(text).toBe(conf.replace(/^repo1-cipher-pass=.*$/m, `repo1-cipher-pass=${passphrase}`));
      const st = await fsp.stat(written);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.uid).toBe(postgresUid());

      const without = await runSetupIn(await fsp.mkdtemp(path.join(dir, "none-")), script, conf);
      expect(without.status).toBe(78);
      expect(without.stderr).toMatch(/LOOMWORKS_BACKUP_CIPHER_PASS in \.env/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The secrets each service of the prod-like project receives, by file under /run/secrets (or `env:`
 * for its environment), with the `.env` variable behind each. nginx's only secret is the TLS key,
 * a host file (no placeholder: a missing file stops Compose itself).
 */
const SERVICE_SECRETS: Record<"postgres" | "ops" | "erp", Record<string, string>> = {
  postgres: {
    "loomworks/superuser-password": "LOOMWORKS_POSTGRES_PASSWORD",
    "loomworks/replication-password": "LOOMWORKS_REPLICATION_PASSWORD",
    "loomworks/monitor-password": "LOOMWORKS_MONITOR_PASSWORD",
    "loomworks/erp-password": "LOOMWORKS_ERP_DB_PASSWORD",
    "backup-cipher-pass": "LOOMWORKS_BACKUP_CIPHER_PASS",
  },
  ops: {
    "postgres-password": "LOOMWORKS_POSTGRES_PASSWORD",
    "notify-webhook-url": "LOOMWORKS_NOTIFY_WEBHOOK_URL",
    "backup-cipher-pass": "LOOMWORKS_BACKUP_CIPHER_PASS",
  },
  erp: {
    "odoo-admin-passwd": "LOOMWORKS_ODOO_ADMIN_PASSWD",
    "odoo-db-password": "LOOMWORKS_ERP_DB_PASSWORD",
    "env:OPENAI_API_KEY": "OPENAI_API_KEY",
    "env:ANTHROPIC_API_KEY": "ANTHROPIC_API_KEY",
  },
};

describe.each(Object.keys(SERVICE_SECRETS) as (keyof typeof SERVICE_SECRETS)[])(
  "the %s service's start with the secrets of .env",
  (service) => {
    const prod = render("docker-prod");
    const compose = yaml.load(fileText(prod, COMPOSE_FILE)) as {
      services: Record<string, { entrypoint: string[]; secrets?: { target: string }[] }>;
    };
    const rendered = compose.services[service];
    const secrets = SERVICE_SECRETS[service];

    /**
     * The service's entrypoint as Compose runs it (`$$` is `$`), from its `sh -c` on (tini aside),
     * the scripts it runs mounted under `dir`, the image's own entrypoint replaced by `echo`.
     */
    async function start(values: Record<string, string>): Promise<SpawnSyncReturns<string>> {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `lw-compose-start-${service}-`));
      try {
        const files = Object.fromEntries(Object.entries(values).filter(([k]) => !k.startsWith("env:")));
        const env = Object.fromEntries(
          Object.entries(values)
            .filter(([k]) => k.startsWith("env:"))
            .map(([k, v]) => [k.slice(4), v]),
        );
        await mountIn(dir, fileText(prod, "postgres/pgbackrest.conf"), files);
        for (const [file, mounted] of [
          ["postgres/pgbackrest-conf.sh", "pgbackrest-conf.sh"],
          ["erp/secrets-check.sh", "secrets-check.sh"],
        ])
          await fsp.writeFile(`${dir}/mounted/${mounted}`, localized(dir, fileText(prod, file)));
        const words = rendered.entrypoint.map((w) => w.replace(/\$\$/g, "$"));
        const [flag, command, name] = words.slice(words.indexOf("/bin/sh") + 1);
        expect(flag).toBe("-c");
        const local = localized(dir, command).replace(/exec (\S+ )?"\$@"$/, 'exec echo "$@"');
        expect(local).toMatch(/&& exec echo "\$@"$/);
        return spawnSync("sh", ["-c", local, name, "started"], {
          encoding: "utf8",
          env: { PATH: process.env.PATH, ...env },
        });
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    }
    const real = Object.fromEntries(
      Object.keys(secrets).map((k) => [k, `real-${k.replace(/\W/g, "-")}-9f2b`]),
    );

    it("checks every secret the service receives", () => {
      const received = (rendered.secrets ?? []).map((s) => path.posix.relative("/run/secrets", s.target));
      expect(received.sort()).toEqual(
        Object.keys(secrets)
          .filter((k) => !k.startsWith("env:"))
          .sort(),
      );
      if (service === "erp")
        expect(rendered.entrypoint).toEqual([
          ...ERP_IMAGE.entrypoint.slice(0, -1),
          "/bin/sh",
          "-c",
          `sh /etc/loomworks/secrets-check.sh && exec ${ERP_IMAGE.entrypoint[ERP_IMAGE.entrypoint.length - 1]} "$$@"`,
          "erp-start",
        ]);
    });

    it("starts with real values", async () => {
      const r = await start(real);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("started\n");
      expect(r.status).toBe(0);
    });

    it.each(Object.entries(secrets))(
      "refuses %s while it is the placeholder or empty",
      async (key, variable) => {
        const placeholder = await start({ ...real, [key]: SECRET_PLACEHOLDER });
        expect(placeholder.status).toBe(78);
        expect(placeholder.stdout).toBe("");
        expect(placeholder.stderr).toContain(`${variable} is still the placeholder of .env.example`);
        const empty = await start({ ...real, [key]: "" });
        expect(empty.status).toBe(78);
        expect(empty.stdout).toBe("");
        expect(empty.stderr).toMatch(new RegExp(`${variable}( is empty| in \\.env)`));
      },
    );
  },
);

const SFTP_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nY29tcG9zZS1vZmZzaXRlLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n";
/** One offsite repository of each type, with real-looking secrets (a stack under Pulumi has them). */
const OFFSITES: Record<string, { offsite: Record<string, unknown>; secrets: Record<string, string> }> = {
  path: {
    offsite: { type: "path", path: "/mnt/nas/loomworks", retentionFull: 4 },
    // repo2 shares repo1's passphrase: the same secret fills both.
    secrets: {},
  },
  s3: {
    offsite: {
      type: "s3",
      path: "/loomworks",
      endpoint: "s3.example.net:9000",
      bucket: "lw-backups",
      region: "eu-central-1",
      accessKey: "AKIAOFFSITEACCESSKEY",
      secretKey: String.raw`s3cret/Key+with\odd"chars$1`,
      encryptionPassphrase: "offsite-passphrase-of-the-stack",
      uriStyle: "path",
    },
    secrets: {
      "offsite-s3-key": "AKIAOFFSITEACCESSKEY",
      "offsite-s3-key-secret": String.raw`s3cret/Key+with\odd"chars$1`,
      "offsite-cipher-pass": "offsite-passphrase-of-the-stack",
    },
  },
  sftp: {
    offsite: sftpOffsiteSettings(SFTP_KEY),
    secrets: { "offsite-sftp-key": SFTP_KEY },
  },
};
const REPO1_PASSPHRASE = "repo1-passphrase-of-the-stack";

describe.each(Object.keys(OFFSITES))("backups.offsite of type %s", (type) => {
  const { offsite: raw, secrets } = OFFSITES[type];
  const config = parseStackFile(stackText("docker-prod"), "Pulumi.docker-prod.yaml");
  const backups = {
    ...config.platform.backups,
    encryptionPassphrase: REPO1_PASSPHRASE,
    offsite: offsiteSchema.parse(raw),
  };
  const r = renderCompose({
    stack: "docker-prod",
    project: "loomworks-hosting",
    config: { ...config, platform: { ...config.platform, backups } },
    checkoutDir: "../..",
  });
  const base = yaml.load(fileText(r, COMPOSE_FILE)) as {
    services: Record<string, Record<string, unknown>>;
    secrets: Record<string, unknown>;
  };
  const secretValues = [REPO1_PASSPHRASE, ...Object.values(secrets)];

  it("is valid against the Compose Specification's schema; .env.example names every variable read", () => {
    expect(errorsOf(base)).toEqual([]);
    expect(errorsOf(r.devOverride)).toEqual([]);
    const used = new Set([
      ...interpolated(fileText(r, COMPOSE_FILE)),
      ...interpolated(fileText(r, COMPOSE_DEV_FILE)),
      ...secretSources(base),
    ]);
    expect([...envExampleNames(fileText(r, ENV_EXAMPLE_FILE))].sort()).toEqual([...used].sort());
  });

  it("puts no secret into any rendered file", () => {
    for (const f of r.files) {
      for (const value of secretValues) expect(f.content, f.path).not.toContain(value);
      expect(f.content, f.path).not.toContain("PRIVATE KEY");
      expect(f.content, f.path).not.toContain("Y29tcG9zZS1vZmZzaXRlLWtleQ");
    }
  });

  it("gives postgres and ops the repository's mount or secrets, and no other service", () => {
    const { postgres, ops } = base.services;
    const offsiteMounts = (s: Record<string, unknown>) =>
      (s.volumes as unknown[]).filter((v) => JSON.stringify(v).includes(OFFSITE_CONTAINER.mountDir));
    const offsiteSecrets = (s: Record<string, unknown>) =>
      ((s.secrets ?? []) as { source: string; target: string }[]).filter((x) =>
        x.source.startsWith("offsite_"),
      );
    const expected: Record<string, { mounts: unknown[]; secrets: unknown[] }> = {
      path: {
        mounts: [
          {
            type: "bind",
            source: "/mnt/nas/loomworks",
            target: OFFSITE_CONTAINER.mountDir,
            bind: { create_host_path: false },
          },
        ],
        secrets: [],
      },
      s3: {
        mounts: [],
        secrets: [
          { source: "offsite_s3_key", target: "/run/secrets/offsite-s3-key" },
          { source: "offsite_s3_key_secret", target: "/run/secrets/offsite-s3-key-secret" },
          { source: "offsite_cipher_pass", target: "/run/secrets/offsite-cipher-pass" },
        ],
      },
      sftp: {
        mounts: [],
        secrets: [{ source: "offsite_sftp_key", target: "/run/secrets/offsite-sftp-key" }],
      },
    };
    for (const [name, service] of Object.entries({ postgres, ops })) {
      expect(offsiteMounts(service), name).toEqual(expected[type].mounts);
      expect(offsiteSecrets(service), name).toEqual(expected[type].secrets);
      expect(service.secrets, name).toContainEqual({
        source: "backup_cipher_pass",
        target: "/run/secrets/backup-cipher-pass",
      });
    }
    for (const name of ["redis", "erp", "nginx"]) {
      const text = JSON.stringify(base.services[name]);
      expect(text, name).not.toContain("offsite");
      expect(text, name).not.toContain("/mnt/nas");
    }
    const topLevel = Object.fromEntries(
      Object.entries(base.secrets).filter(([k]) => k.startsWith("offsite_")),
    );
    expect(topLevel).toEqual(
      {
        path: {},
        s3: {
          offsite_s3_key: { environment: "LOOMWORKS_OFFSITE_S3_KEY" },
          offsite_s3_key_secret: { environment: "LOOMWORKS_OFFSITE_S3_KEY_SECRET" },
          offsite_cipher_pass: { environment: "LOOMWORKS_OFFSITE_CIPHER_PASS" },
        },
        sftp: {
          offsite_sftp_key: {
            file: "${LOOMWORKS_OFFSITE_SFTP_KEY_FILE:?set LOOMWORKS_OFFSITE_SFTP_KEY_FILE in .env}",
          },
        },
      }[type],
    );
  });

  it("lists each new variable in .env.example with a placeholder and a comment", () => {
    const env = fileText(r, ENV_EXAMPLE_FILE);
    const names = {
      path: [],
      s3: ["LOOMWORKS_OFFSITE_S3_KEY", "LOOMWORKS_OFFSITE_S3_KEY_SECRET", "LOOMWORKS_OFFSITE_CIPHER_PASS"],
      sftp: ["LOOMWORKS_OFFSITE_SFTP_KEY_FILE"],
    }[type] as string[];
    const listed = [...envExampleNames(env)].filter((n) => n.startsWith("LOOMWORKS_OFFSITE_"));
    expect(listed.sort()).toEqual([...names].sort());
    for (const name of names)
      expect(env, name).toMatch(
        new RegExp(`\n# offsite [^\n]+\n${name}=(${SECRET_PLACEHOLDER}|/path/to/.+)\n`),
      );
  });

  it("after pgbackrest-conf.sh, has the repo2 lines the Pulumi docker target renders", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `lw-compose-offsite-${type}-`));
    try {
      const run = await runSetupIn(
        dir,
        fileText(r, "postgres/pgbackrest-conf.sh"),
        fileText(r, "postgres/pgbackrest.conf"),
        { "backup-cipher-pass": REPO1_PASSPHRASE, ...secrets },
      );
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      const written = await fsp.readFile(`${dir}/pgbackrest/pgbackrest.conf`, "utf8");
      const repo2 = written.split("\n").filter((l) => l.startsWith("repo2-"));
      const pulumiRepo = dockerOffsiteRepo(backups, "loomworks-hosting/docker-prod");
      expect(pulumiRepo).toBeDefined();
      expect(repo2).toEqual(renderOffsiteRepo(pulumiRepo as OffsiteRepo));
      expect(written).toMatch(new RegExp(`^repo1-cipher-pass=${REPO1_PASSPHRASE}$`, "m"));
      if (type === "sftp") {
        // Where pgbackrest.conf names it (the script's /etc/pgbackrest moved under dir), postgres's, 0600.
        const key = `${dir}/pgbackrest/offsite-sftp-key`;
        expect(repo2).toContain(`repo2-sftp-private-key-file=${OFFSITE_CONTAINER.sftpKeyFile}`);
        expect(await fsp.readFile(key, "utf8")).toBe(SFTP_KEY);
        const st = await fsp.stat(key);
        expect(st.mode & 0o777).toBe(0o600);
        expect(st.uid).toBe(postgresUid());
      }
      // Without the offsite secrets, the container does not start.
      if (Object.keys(secrets).length > 0) {
        const missing = await runSetupIn(
          await fsp.mkdtemp(path.join(dir, "none-")),
          fileText(r, "postgres/pgbackrest-conf.sh"),
          fileText(r, "postgres/pgbackrest.conf"),
          { "backup-cipher-pass": REPO1_PASSPHRASE },
        );
        expect(missing.status).toBe(78);
        expect(missing.stderr).toMatch(/LOOMWORKS_OFFSITE_\w+ in \.env/);
      }
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("npm run compose", () => {
  const run = (...args: string[]) =>
    spawnSync(
      path.join(repoRoot, "node_modules", ".bin", "vite-node"),
      ["scripts/compose.ts", "--", ...args],
      {
        cwd: repoRoot,
        encoding: "utf8",
      },
    );

  it("writes the project into --out", async () => {
    const out = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-compose-out-"));
    try {
      const r = run("--stack", "docker-dev", "--file", fixture("docker-dev"), "--out", out);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const written = await fsp.readdir(out, { recursive: true });
      for (const f of render("docker-dev").files) expect(written).toContain(f.path);
      for (const script of ["postgres/pgbackrest-conf.sh", "erp/secrets-check.sh", "ops/loomworks-job"])
        expect((await fsp.stat(path.join(out, script))).mode & 0o777, script).toBe(0o755);
      expect((await fsp.stat(path.join(out, COMPOSE_FILE))).mode & 0o777).toBe(0o644);
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
  });

  it("refuses a stack of another target, and a bad one with the preview's messages", async () => {
    const out = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-compose-out-"));
    try {
      const local = run("--stack", "dev", "--out", out);
      expect(local.status).toBe(1);
      expect(local.stderr).toMatch(/platform\.target is local; compose renders the docker target only/);
      const bad = path.join(out, "Pulumi.bad.yaml");
      await fsp.writeFile(
        bad,
        yaml.dump({ config: { "loomworks:platform": { target: "docker", domain: "A B" } } }),
      );
      const invalid = run("--stack", "bad", "--file", bad, "--out", out);
      expect(invalid.status).toBe(1);
      expect(invalid.stderr).toContain('platform: key "domain": must be a lowercase DNS name');
      expect(await fsp.readdir(out)).toEqual(["Pulumi.bad.yaml"]);
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
  });
});
