import * as pulumi from "@pulumi/pulumi";
import type * as Diff from "../lib/pulumi/diff";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

/**
 * A random password kept as a secret in the stack state. It stands in for `@pulumi/random`'s
 * RandomPassword, whose provider plugin cannot be built here (its Go module is not served by the
 * module proxy this project may use). Changing `length` or any `keepers` value makes a new one.
 */
export interface RandomSecretArgs {
  length?: pulumi.Input<number>;
  keepers?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

interface RandomSecretInputs {
  length: number;
  keepers: Record<string, string>;
}

const kit = libModule<typeof Diff>("pulumi/diff");

export const randomSecretProvider: pulumi.dynamic.ResourceProvider<RandomSecretInputs> = {
  async create(inputs) {
    const crypto = require("node:crypto") as typeof import("node:crypto");
    const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let result = "";
    for (let i = 0; i < inputs.length; i++) result += alphabet[crypto.randomInt(alphabet.length)];
    return { id: crypto.randomUUID(), outs: { ...inputs, result } };
  },
  async diff(_id, olds: RandomSecretInputs, news: RandomSecretInputs) {
    const { diffKeys, diffResult } = kit();
    const d = diffKeys(
      { ...olds },
      { ...news },
      {
        replaceKeys: ["length", "keepers"],
        updateKeys: [],
        normalize: (v, key) => (key === "keepers" ? (v ?? {}) : v),
      },
    );
    return diffResult(d, { deleteBeforeReplace: false });
  },
};

/**
 * The `keepers` of a rotatable password: one entry per rotation trigger that is set, none when no
 * trigger is (so stacks without `credentialRotation` see no diff at all).
 */
export function rotationKeepers(triggers: Record<string, string | undefined>): Record<string, string> {
  const keepers: Record<string, string> = {};
  for (const [key, value] of Object.entries(triggers)) {
    if (value !== undefined) keepers[`${key}CredentialRotation`] = value;
  }
  return keepers;
}

export class RandomSecret extends pulumi.dynamic.Resource {
  declare readonly result: pulumi.Output<string>;

  constructor(name: string, args: RandomSecretArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(randomSecretProvider, __filename, "randomSecretProvider"),
      name,
      { length: args.length ?? 32, keepers: args.keepers ?? {}, result: undefined },
      { ...opts, additionalSecretOutputs: ["result"] },
      "loomworks",
      "RandomSecret",
    );
  }
}
