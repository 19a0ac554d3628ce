import "vitest";

/** The shared integration cluster, created once by test/integration/global-setup.ts. */
export interface ProvidedPg {
  stateDir: string;
  port: number;
  host: string;
  /** Superuser DSN over TCP: postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  adminDsn: string;
  superuserPassword: string;
  stanza: string;
  archiveTimeoutSeconds: number;
  retentionFull: number;
}

declare module "vitest" {
  export interface ProvidedContext {
    pg: ProvidedPg;
  }
}
