import * as pulumi from "@pulumi/pulumi";
import type * as WaitForLogin from "../lib/pg/waitForLogin";
import type * as Diff from "../lib/pulumi/diff";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

/**
 * A gate in front of everything that connects with a freshly generated password: create and update
 * wait (lib/pg/waitForLogin.ts) until `dsn` logs in — on the kubernetes target the server applies a
 * rotated password from its Secret a minute or two after `pulumi up` wrote it. No state of its own;
 * delete does nothing.
 */
export interface PostgresLoginArgs {
  /** The connection to wait for (secret). */
  dsn: pulumi.Input<string>;
  /** Default 600. */
  timeoutSeconds?: pulumi.Input<number>;
}

interface PostgresLoginInputs {
  dsn: string;
  timeoutSeconds: number;
}

const waits = libModule<typeof WaitForLogin>("pg/waitForLogin");
const kit = libModule<typeof Diff>("pulumi/diff");

async function wait(inputs: PostgresLoginInputs): Promise<PostgresLoginInputs> {
  const m = waits();
  // pulumi.log's promise only tells that the engine has the message: nothing waits for it.
  const attempts = await m.waitForLogin(inputs.dsn, {
    timeoutMs: inputs.timeoutSeconds * 1000,
    onRetry: (reason) => void pulumi.log.info(`${m.describeDsn(inputs.dsn)}: ${reason}; retrying`),
  });
  if (attempts > 1)
    void pulumi.log.info(`${m.describeDsn(inputs.dsn)}: logged in after ${attempts} attempts`);
  return inputs;
}

export const postgresLoginProvider: pulumi.dynamic.ResourceProvider<PostgresLoginInputs> = {
  async create(inputs) {
    return { id: "postgres-login", outs: await wait(inputs) };
  },
  async diff(_id, olds, news) {
    const d = kit().diffKeys(
      { ...olds },
      { ...news },
      { replaceKeys: [], updateKeys: ["dsn", "timeoutSeconds"] },
    );
    return { changes: d.changed.length > 0 };
  },
  async update(_id, _olds, news) {
    return { outs: await wait(news) };
  },
};

export class PostgresLogin extends pulumi.dynamic.Resource {
  constructor(name: string, args: PostgresLoginArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(postgresLoginProvider, __filename, "postgresLoginProvider"),
      name,
      { dsn: args.dsn, timeoutSeconds: args.timeoutSeconds ?? 600 },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "dsn"] },
      "loomworks",
      "PostgresLogin",
    );
  }
}
