/**
 * The docker target's offsite repository under Pulumi mocks: every container that runs pgBackRest
 * (PostgreSQL for archive-push, the ops container for backups, a restore container) gets the same
 * pgbackrest.conf with repo2 (a secret upload), a `path` repository as a bind mount of the host's
 * directory (read-only in a restore), and an SFTP key given as a secret as an upload of its own,
 * in no other container.
 */
import { describe, expect, it } from "vitest";
import { installMocks, isSecretInput, plain, registered, type Registration } from "../helpers/pulumi-mocks";
import { sftpOffsiteSettings } from "../helpers/offsite-settings";

const registrations = installMocks();

import { DockerHostPlatform } from "../../components/platform/DockerHostPlatform";
import {
  OFFSITE_CONTAINER,
  POSTGRES_CONTAINER,
  dockerRestoreContainerName,
} from "../../components/docker/config";
import { parseStackConfig } from "../../infra/config/load";

const CONTAINER = "docker:index/container:Container";
const projectDir = `${__dirname}/../..`;
const SFTP_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nZG9ja2VyLW9mZnNpdGUta2V5\n-----END OPENSSH PRIVATE KEY-----";
const RESTORE = { time: "2026-12-01T10:00:00Z" };

type Upload = { file: string; content: string; permissions: string };
type Volume = { hostPath?: string; containerPath: string; readOnly?: boolean };

async function build(name: string, offsite: Record<string, unknown>): Promise<Registration[]> {
  const config = parseStackConfig({
    platform: {
      target: "docker",
      domain: "erp.example",
      templates: { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } },
      backups: { offsite },
      docker: { namePrefix: name },
    },
    tenants: { acme: { tier: "pro", adminEmail: "boss@acme.example", restore: RESTORE } },
  });
  const first = registrations.length;
  const platform = new DockerHostPlatform(name, { config, projectDir });
  await registered(platform);
  return registrations.slice(first).filter((r) => r.type === CONTAINER);
}

const containerOf = (regs: Registration[], name: string): Registration => {
  const found = regs.filter((r) => r.name === name);
  expect(found, name).toHaveLength(1);
  return found[0];
};
const uploads = (r: Registration) => plain(r.inputs.uploads) as Upload[];
const volumes = (r: Registration) => plain(r.inputs.volumes) as Volume[];

describe("docker: the offsite repository in every container that runs pgBackRest", () => {
  it("a mounted path: repo2 in pgbackrest.conf, the host directory bind-mounted (read-only for restores)", async () => {
    const regs = await build("lwpath", { type: "path", path: "/mnt/nas/loomworks", retentionFull: 4 });
    const restore = dockerRestoreContainerName("lwpath", "acme", RESTORE);
    for (const name of ["postgres", "ops", restore]) {
      const c = containerOf(regs, name);
      const conf = uploads(c).find((u) => u.file === POSTGRES_CONTAINER.pgbackrestConfig)?.content;
      expect(conf, name).toMatch(/^repo2-path=\/var\/lib\/pgbackrest-offsite\/loomworks-hosting\/unit$/m);
      expect(conf, name).toMatch(/^repo2-retention-full=4$/m);
      expect(isSecretInput(c.inputs.uploads), name).toBe(true);
      expect(volumes(c), name).toContainEqual({
        hostPath: "/mnt/nas/loomworks",
        containerPath: OFFSITE_CONTAINER.mountDir,
        ...(name === restore ? { readOnly: true } : {}),
      });
    }
    for (const name of ["redis", "erp", "nginx"]) {
      expect(JSON.stringify(plain(containerOf(regs, name).inputs))).not.toContain("/mnt/nas/loomworks");
    }
  });

  it("SFTP with a private key: the key uploaded next to pgbackrest.conf where pgBackRest runs, nowhere else", async () => {
    const regs = await build("lwsftp", sftpOffsiteSettings(SFTP_KEY));
    const restore = dockerRestoreContainerName("lwsftp", "acme", RESTORE);
    for (const name of ["postgres", "ops", restore]) {
      const c = containerOf(regs, name);
      expect(uploads(c), name).toContainEqual({
        file: OFFSITE_CONTAINER.sftpKeyFile,
        content: SFTP_KEY,
        permissions: "0444",
      });
      const conf = uploads(c).find((u) => u.file === POSTGRES_CONTAINER.pgbackrestConfig)?.content;
      expect(conf, name).toMatch(/^repo2-sftp-private-key-file=\/etc\/pgbackrest\/offsite-sftp-key$/m);
    }
    for (const name of ["redis", "erp", "nginx"]) {
      expect(JSON.stringify(plain(containerOf(regs, name).inputs))).not.toContain("ZG9ja2VyLW9mZnNpdGUta2V5");
    }
  });
});
