import * as pulumi from "@pulumi/pulumi";
import { LocalPostgres } from "../../dynamic-providers/localPostgres";
import { RandomSecret } from "../../dynamic-providers/randomSecret";

export interface LocalPostgresClusterArgs {
  stateDir: string;
  port: number;
  archiveTimeoutSeconds: number;
  retentionFull: number;
  encryptionPassphrase?: pulumi.Input<string>;
}

/** The local target's PostgreSQL 15 cluster with its pgBackRest repository, under the state directory. */
export class LocalPostgresCluster extends pulumi.ComponentResource {
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly adminDsn: pulumi.Output<string>;
  readonly stateDir: string;

  constructor(name: string, args: LocalPostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:local:PostgresCluster", name, {}, opts);
    const superuserPassword = new RandomSecret(
      `${name}-superuser-password`,
      { length: 32 },
      { parent: this },
    );
    const server = new LocalPostgres(
      `${name}-server`,
      {
        stateDir: args.stateDir,
        port: args.port,
        archiveTimeoutSeconds: args.archiveTimeoutSeconds,
        superuserPassword: superuserPassword.result,
        stanza: "loomworks",
        retentionFull: args.retentionFull,
        encryptionPassphrase: args.encryptionPassphrase,
      },
      { parent: this, customTimeouts: { create: "20m", update: "20m", delete: "10m" } },
    );
    this.stateDir = args.stateDir;
    this.host = server.host;
    this.port = server.port;
    this.adminDsn = pulumi.secret(server.adminDsn);
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
