import * as pulumi from "@pulumi/pulumi";
import type * as Unreachable from "../lib/pg/unreachable";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";
import type * as TenantProvider from "../lib/tenant/provider";
import type * as TemplateLib from "../lib/tenant/template";
import type { KubernetesCommandRunner } from "../lib/tenant/templatePod";

/**
 * A template database tenants are copied from, built from a dump or by the ERP initializer
 * command (lib/tenant/template.ts does the work).
 *
 *  - create/update: ensureTemplate (builds under `<database>__building`, then swaps it in; a
 *    crashed build is redone or finished by the next run).
 *  - diff: `database` or `dumpHash` (the source's SHA-256, computed by the program) → replace;
 *    the new template is built first (same database name, rebuilt in place) and the old
 *    resource's delete then leaves it alone because its hash differs. name, fromDump,
 *    fromCommand, adminDsn, stateDir → update in place (a no-op build when the hash is the same;
 *    an adminDsn alone — a rotated superuser password — is only recorded, the template untouched;
 *    neither commandRunner nor builderPassword is part of the diff).
 *  - read: a template dropped by hand disappears from the state; one whose recorded hash differs
 *    (rebuilt or altered outside Pulumi) shows as a `dumpHash` change.
 *  - delete: drops the template (only if it still holds this resource's hash).
 * Dropping a template does not affect tenants already created from it.
 */
export interface TenantTemplateArgs {
  adminDsn: pulumi.Input<string>;
  /** The template's key in stack config (`default`, ...). */
  name: pulumi.Input<string>;
  /** The template database's name. */
  database: pulumi.Input<string>;
  fromDump?: pulumi.Input<string>;
  fromCommand?: pulumi.Input<string>;
  /** The platform's state directory (build logs, the command's working directory). */
  stateDir: pulumi.Input<string>;
  /** Tenants' filestore root (local target): a `fromCommand` build's files become `<root>/<database>`. */
  filestoreRoot?: pulumi.Input<string>;
  /** SHA-256 of the source (lib/tenant/template.ts templateSourceHash), so a changed dump is a diff. */
  dumpHash: pulumi.Input<string>;
  /** Stack table patterns never captured for undo; the guards are installed into the template. */
  excludeTables?: pulumi.Input<pulumi.Input<string>[]>;
  /** The guards version (lib/guards/install.ts GUARDS_VERSION): a new one upgrades the template in place. */
  guardsVersion?: pulumi.Input<string>;
  /** kubernetes target: `fromCommand` runs in a pod of the ERP image (lib/tenant/templatePod.ts); not part of the diff. */
  commandRunner?: pulumi.Input<KubernetesCommandRunner>;
  /**
   * kubernetes target: the builder role's password, the value of the Secret the pod reads
   * (`commandRunner.passwordSecret`). Secret; not part of the diff (a rotated one rebuilds nothing:
   * the role cannot log in between builds, and the next build sets it).
   */
  builderPassword?: pulumi.Input<string>;
}

export interface TenantTemplateInputs {
  adminDsn: string;
  name: string;
  database: string;
  fromDump?: string;
  fromCommand?: string;
  stateDir: string;
  filestoreRoot?: string;
  dumpHash: string;
  excludeTables?: string[];
  guardsVersion?: string;
  commandRunner?: KubernetesCommandRunner;
  builderPassword?: string;
}

export interface TenantTemplateOutputs extends TenantTemplateInputs {
  builtAt: string;
}

const templates = libModule<typeof TemplateLib>("tenant/template");
const support = libModule<typeof TenantProvider>("tenant/provider");
const unreachable = libModule<typeof Unreachable>("pg/unreachable");

/** The build spec: guards are installed whenever the program passes a guards version. */
function templateSpec(p: TenantTemplateInputs): TemplateLib.TemplateSpec {
  return {
    ...p,
    ...(p.guardsVersion ? { guards: { excludeTables: p.excludeTables ?? [] } } : {}),
  };
}

export const tenantTemplateProvider: pulumi.dynamic.ResourceProvider<
  TenantTemplateInputs,
  TenantTemplateOutputs
> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkTemplateInputs({ ...news }) };
  },

  async diff(_id, olds, news) {
    return support().diffTemplate({ ...olds }, { ...news });
  },

  async create(inputs) {
    const log = pulumiLog();
    await templates().ensureTemplate(
      inputs.adminDsn,
      templateSpec(inputs),
      (msg) => void log.info(`TenantTemplate: ${msg}`),
    );
    return {
      id: `loomworks-template:${inputs.database}`,
      outs: { ...inputs, builtAt: new Date().toISOString() },
    };
  },

  async read(id, props) {
    if (!props) return { id, props };
    const r = await unreachable().readReachable(() =>
      templates().templateStatus(props.adminDsn, props.database),
    );
    if ("unreachable" in r) {
      void pulumiLog().warn(
        `TenantTemplate ${props.name}: cluster unreachable (${r.unreachable}); state left unchanged`,
      );
      return { id, props };
    }
    const st = r.found;
    if (!st.exists) return { id: "" };
    return { id, props: { ...props, dumpHash: st.hash ?? "" } };
  },

  async update(_id, olds, news) {
    // Only a password rotated: record it, leave the template alone.
    if (!support().diffTemplate({ ...olds, adminDsn: news.adminDsn }, { ...news }).changes) {
      // No `builderPassword: undefined` key: the engine refuses an undefined secret output.
      const { builderPassword } = news;
      return { outs: { ...olds, adminDsn: news.adminDsn, ...(builderPassword ? { builderPassword } : {}) } };
    }
    const log = pulumiLog();
    const r = await templates().ensureTemplate(
      news.adminDsn,
      templateSpec(news),
      (msg) => void log.info(`TenantTemplate: ${msg}`),
    );
    return {
      outs: { ...news, builtAt: r.rebuilt ? new Date().toISOString() : olds.builtAt },
    };
  },

  async delete(_id, props) {
    await templates().dropTemplate(props.adminDsn, props.database, {
      onlyIfHash: props.dumpHash,
      ...(props.filestoreRoot ? { filestoreRoot: props.filestoreRoot } : {}),
    });
  },
};

export class TenantTemplate extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  /** The template database's name: what tenants' `template` input takes. */
  declare readonly database: pulumi.Output<string>;
  declare readonly dumpHash: pulumi.Output<string>;
  declare readonly builtAt: pulumi.Output<string>;

  constructor(name: string, args: TenantTemplateArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(tenantTemplateProvider, __filename, "tenantTemplateProvider"),
      name,
      { ...args, builtAt: undefined },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn", "builderPassword"],
      },
      "loomworks",
      "TenantTemplate",
    );
  }
}
