import { describe, expect, it } from "vitest";
import {
  PLATFORM_SESSION_OPTIONS,
  PLATFORM_SESSION_SETTINGS,
  platformClientConfig,
  startupOptions,
} from "../../lib/pg/client";
import { REGISTRY_SEARCH_PATH, registryDsn } from "../../lib/registry/registry";

describe("platform session settings (startup options)", () => {
  it("escapes spaces and backslashes as the server's option parser expects", () => {
    expect(startupOptions({ search_path: "pg_catalog, pg_temp", a: "x\\y", empty: "" })).toBe(
      "-c search_path=pg_catalog,\\ pg_temp -c a=x\\\\y -c empty=",
    );
  });

  it("pins search_path and the settings a tenant could use against a platform session", () => {
    expect(PLATFORM_SESSION_SETTINGS).toMatchObject({
      search_path: "pg_catalog, pg_temp",
      statement_timeout: "0",
      lock_timeout: "0",
      idle_in_transaction_session_timeout: "0",
      default_transaction_read_only: "off",
    });
  });

  it("sends them with every DSN; options the DSN carries come after (and win), never instead", () => {
    const plain = platformClientConfig("postgres://u:p@h:5432/db");
    expect(plain).toMatchObject({
      connectionString: "postgres://u:p@h:5432/db",
      options: PLATFORM_SESSION_OPTIONS,
    });
    const reg = platformClientConfig(registryDsn("postgres://u:p@h:5432/postgres"));
    expect(reg.connectionString).toBe("postgres://u:p@h:5432/loomworks_mgmt");
    expect(reg.options).toBe(
      `${PLATFORM_SESSION_OPTIONS} ${startupOptions({ search_path: REGISTRY_SEARCH_PATH })}`,
    );
    const pooled = platformClientConfig({
      connectionString: "postgres://h/db",
      options: "-c synchronous_commit=off",
    });
    expect(pooled.options).toBe(`${PLATFORM_SESSION_OPTIONS} -c synchronous_commit=off`);
  });
});
