import * as pulumi from "@pulumi/pulumi";
import type * as AiKeyFiles from "../lib/odoo/localAiKeys";
import type { LocalAiKeysInputs, LocalAiKeysOutputs } from "../lib/odoo/localAiKeys";
import type * as OdooProvider from "../lib/odoo/provider";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

/**
 * The local target's AI provider keys for the ERP (`<stateDir>/odoo/ai.env`, mode 0600): a thin
 * lifecycle over lib/odoo/localAiKeys.ts. The ERP reads its environment at start: after a changed
 * key, restart it with the file loaded (docs/operations/erp.md#ai-provider-keys).
 */
export interface LocalAiKeysArgs {
  stateDir: pulumi.Input<string>;
  /** Environment variable name → API key (secrets). */
  keys: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

const files = libModule<typeof AiKeyFiles>("odoo/localAiKeys");
const support = libModule<typeof OdooProvider>("odoo/provider");

export const localAiKeysProvider: pulumi.dynamic.ResourceProvider<LocalAiKeysInputs, LocalAiKeysOutputs> = {
  async create(inputs) {
    return files().createLocalAiKeys(inputs);
  },
  async read(id, props) {
    if (!props) return { id, props };
    const current = await files().readLocalAiKeys(props);
    return current ? { id, props: current } : { id: "", props: {} as LocalAiKeysOutputs };
  },
  async diff(_id, olds, news) {
    return support().diffLocalAiKeys(olds, news);
  },
  async update(_id, olds, news) {
    return { outs: await files().updateLocalAiKeys(olds, news) };
  },
  async delete(_id, props) {
    await files().deleteLocalAiKeys(props);
  },
};

export class LocalAiKeys extends pulumi.dynamic.Resource {
  /** `<stateDir>/odoo/ai.env`, absolute. */
  declare readonly path: pulumi.Output<string>;

  constructor(name: string, args: LocalAiKeysArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(localAiKeysProvider, __filename, "localAiKeysProvider"),
      name,
      { ...args, path: undefined, sha256: undefined, mode: undefined },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "keys"] },
      "loomworks",
      "LocalAiKeys",
    );
  }
}
