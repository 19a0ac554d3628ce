import * as pulumi from "@pulumi/pulumi";
import { DockerPlatform } from "../docker/DockerPlatform";
import { PlatformComponent, secretValues, type PlatformArgs } from "./platform";

/**
 * The docker target: PostgreSQL, Redis, the ERP and nginx containers on one Docker host
 * (components/docker/DockerPlatform.ts). Tenant databases are not provisioned on it by this release
 * (the local target's providers would reach its published PostgreSQL port; see
 * docs/operations/docker.md): its tenant outputs are empty.
 */
export class DockerHostPlatform extends PlatformComponent {
  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, opts);
    const { platform, tenants } = args.config;
    const docker = new DockerPlatform(
      "docker",
      {
        docker: platform.docker,
        odoo: platform.odoo,
        domain: platform.domain,
        tenants: tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
        postgres: {
          hostPort: platform.postgresPort,
          archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
          retentionFull: platform.backups.retentionFull,
          ...(platform.backups.encryptionPassphrase === undefined
            ? {}
            : { encryptionPassphrase: pulumi.secret(platform.backups.encryptionPassphrase) }),
        },
        projectDir: args.projectDir,
        aiKeys: secretValues(platform.ai.keys),
      },
      { parent: this },
    );
    this.postgres = docker.postgres;
    this.router = {
      url: pulumi.output(docker.url),
      nginxConfig: pulumi.output(docker.nginxConfig),
      odooConfig: pulumi.output(docker.odooConfig),
    };
    this.registerOutputs({});
  }
}
