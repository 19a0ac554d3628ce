import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../../infra/config/schema";
import { TenantTemplate } from "../../dynamic-providers/tenantTemplate";
import { GUARDS_VERSION } from "../../lib/guards/install";
import type { KubernetesCommandRunner } from "../../lib/tenant/templatePod";

/** Database name of a declared tenant template. */
export function templateDatabaseName(templateName: string): string {
  return `loomworks_template_${templateName.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
}

/** What identifies a template's content, so a changed dump or command shows as a replacement. */
export function templateSourceHash(source: { fromDump: string } | { fromCommand: string }): string {
  const hash = crypto.createHash("sha256");
  if ("fromDump" in source) hash.update(fs.readFileSync(source.fromDump));
  else hash.update(source.fromCommand);
  return hash.digest("hex");
}

/** How a `fromCommand` template builds on kubernetes: in a pod, as its builder, whose password is in `secret`. */
export interface TemplatePodBuild {
  commandRunner: KubernetesCommandRunner;
  builderPassword: pulumi.Output<string>;
  secret: pulumi.Resource;
}

export interface TemplatesArgs {
  platform: StackConfig["platform"];
  projectDir: string;
  adminDsn: pulumi.Input<string>;
  /** The platform's state directory (absolute). */
  stateDir: string;
  /** What every build waits for (the cluster, or the superuser's login gate). */
  dependsOn: pulumi.Resource[];
  /**
   * The kubernetes target: builds a `fromCommand` template in a pod. Absent: the command runs on
   * this machine, and the template's filestore is kept under the state directory.
   */
  podBuild?: (templateName: string) => TemplatePodBuild;
}

/** One TenantTemplate per declared template (the tenants' source databases), children of `parent`. */
export function declareTemplates(parent: pulumi.Resource, args: TemplatesArgs): Map<string, TenantTemplate> {
  const { platform, podBuild, stateDir } = args;
  const templates = new Map<string, TenantTemplate>();
  for (const [templateName, source] of Object.entries(platform.templates)) {
    const resolved =
      "fromDump" in source ? { fromDump: path.resolve(args.projectDir, source.fromDump) } : source;
    const pod = podBuild && "fromCommand" in resolved ? podBuild(templateName) : undefined;
    templates.set(
      templateName,
      new TenantTemplate(
        `template-${templateName}`,
        {
          adminDsn: args.adminDsn,
          name: templateName,
          database: templateDatabaseName(templateName),
          ...resolved,
          stateDir,
          ...(podBuild ? {} : { filestoreRoot: path.join(stateDir, "filestore") }),
          dumpHash: templateSourceHash(resolved),
          excludeTables: platform.undo.excludeTables ?? [],
          guardsVersion: GUARDS_VERSION,
          ...(pod ? { commandRunner: pod.commandRunner, builderPassword: pod.builderPassword } : {}),
        },
        {
          parent,
          dependsOn: [...args.dependsOn, ...(pod ? [pod.secret] : [])],
          customTimeouts: { create: "30m", update: "30m" },
        },
      ),
    );
  }
  return templates;
}
