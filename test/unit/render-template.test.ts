import { describe, expect, it } from "vitest";
import { renderPostgresqlConf } from "../../lib/pg/cluster";
import { renderPgBackRestConf } from "../../lib/pg/pgbackrest";
import { loadTemplate, renderTemplate, templatePlaceholders } from "../../lib/templates/render";

describe("renderTemplate", () => {
  it("replaces every occurrence of each placeholder", () => {
    expect(renderTemplate("a={{a}} b={{ b }} again={{a}}", { a: "x", b: 2 })).toBe("a=x b=2 again=x");
  });

  it("renders numbers, booleans and empty strings", () => {
    expect(renderTemplate("{{n}}|{{t}}|{{e}}|", { n: 0, t: false, e: "" })).toBe("0|false||");
  });

  it("throws naming every placeholder without a value", () => {
    expect(() => renderTemplate("{{a}} {{missing}} {{other}} {{u}}", { a: 1, u: undefined })).toThrow(
      "template placeholder(s) without a value: {{missing}}, {{other}}, {{u}}",
    );
  });

  it("does not expand placeholders inside values, nor treat $ patterns specially", () => {
    expect(renderTemplate("{{a}}-{{b}}", { a: "{{b}}", b: "$&$1$$" })).toBe("{{b}}-$&$1$$");
  });

  it("ignores unused values and leaves text that is not a placeholder alone", () => {
    expect(renderTemplate("x {{ not valid }} {a} {{1x}}", { unused: "y" })).toBe(
      "x {{ not valid }} {a} {{1x}}",
    );
  });

  it("does not read values from the prototype chain", () => {
    expect(() => renderTemplate("{{toString}}", {})).toThrow("{{toString}}");
  });

  it("lists placeholders", () => {
    expect(templatePlaceholders("{{b}} {{a}} {{ b }}")).toEqual(["a", "b"]);
  });
});

describe("project templates", () => {
  const pgConf = () =>
    renderPostgresqlConf({
      port: 15432,
      archiveTimeoutSeconds: 60,
      stanza: "loomworks",
      pgbackrestConfig: "/srv/state/pgbackrest/pgbackrest.conf",
      socketDir: "/srv/state/postgres/run",
      logDirectory: "/srv/state/postgres/log",
      pgbackrestBin: "/usr/bin/pgbackrest",
    });

  it("postgresql.conf renders completely with archiving through pgBackRest", () => {
    const text = pgConf();
    expect(text).not.toMatch(/\{\{/);
    expect(text).toMatch(/^port = 15432$/m);
    expect(text).toMatch(/^listen_addresses = '127\.0\.0\.1'$/m);
    expect(text).toMatch(/^unix_socket_directories = '\/srv\/state\/postgres\/run'$/m);
    expect(text).toMatch(/^wal_level = replica$/m);
    expect(text).toMatch(/^archive_mode = on$/m);
    expect(text).toContain(
      "archive_command = '/usr/bin/pgbackrest --config=/srv/state/pgbackrest/pgbackrest.conf --stanza=loomworks archive-push %p'",
    );
    expect(text).toMatch(/^archive_timeout = 60$/m);
    expect(text).toMatch(/^log_directory = '\/srv\/state\/postgres\/log'$/m);
    expect(text).toMatch(/^shared_preload_libraries = ''$/m);
  });

  it("postgresql.conf refuses values that would break out of a quoted setting", () => {
    expect(() =>
      renderPostgresqlConf({
        port: 1,
        archiveTimeoutSeconds: 1,
        stanza: "s",
        pgbackrestConfig: "/x'; evil",
        socketDir: "/r",
        logDirectory: "/l",
      }),
    ).toThrow(/unsafe character in pgbackrest_config/);
  });

  const brValues = {
    repoPath: "/s/pgbackrest/repo",
    retentionFull: 3,
    spoolPath: "/s/pgbackrest/spool",
    lockPath: "/s/pgbackrest/lock",
    logPath: "/s/pgbackrest/log",
    stanza: "loomworks",
    pgPath: "/s/postgres/data",
    pgPort: 15432,
    pgSocketPath: "/s/postgres/run",
  };

  it("pgbackrest.conf renders without encryption", () => {
    const text = renderPgBackRestConf(brValues);
    expect(text).not.toMatch(/\{\{/);
    expect(text).toMatch(/^repo1-path=\/s\/pgbackrest\/repo$/m);
    expect(text).toMatch(/^repo1-retention-full=3$/m);
    expect(text).toMatch(/^compress-type=zst$/m);
    expect(text).toMatch(/^process-max=2$/m);
    expect(text).toMatch(/^archive-async=y$/m);
    expect(text).toMatch(/^spool-path=\/s\/pgbackrest\/spool$/m);
    expect(text).toMatch(/^\[loomworks\]$/m);
    expect(text).toMatch(/^pg1-port=15432$/m);
    expect(text).not.toContain("cipher");
  });

  it("pgbackrest.conf enables aes-256-cbc with a passphrase", () => {
    const text = renderPgBackRestConf({ ...brValues, encryptionPassphrase: "p4ss-phrase" });
    expect(text).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    expect(text).toMatch(/^repo1-cipher-pass=p4ss-phrase$/m);
  });

  it("pgbackrest.conf rejects a passphrase that would inject configuration, without echoing it", () => {
    const evil = "x\nrepo1-path=/elsewhere";
    let message = "";
    try {
      renderPgBackRestConf({ ...brValues, encryptionPassphrase: evil });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/one line/);
    expect(message).not.toContain("elsewhere");
  });

  it("every placeholder of the templates is known", () => {
    expect(templatePlaceholders(loadTemplate("pgbackrest.conf.tmpl"))).toEqual(
      [
        "lock_path",
        "log_path",
        "pg_path",
        "pg_port",
        "pg_socket_path",
        "repo_cipher",
        "repo_path",
        "retention_full",
        "spool_path",
        "stanza",
      ].sort(),
    );
    expect(templatePlaceholders(loadTemplate("postgresql.conf.tmpl"))).toContain("archive_timeout");
  });
});
