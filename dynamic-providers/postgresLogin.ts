import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

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

/** Compiled program: bin/dynamic-providers -> bin/lib/pg/waitForLogin.js. Only this string is captured. */
const WAIT_MODULE = path.join(__dirname, "..", "lib", "pg", "waitForLogin");
type WaitModule = typeof import("../lib/pg/waitForLogin");

async function wait(inputs: PostgresLoginInputs): Promise<PostgresLoginInputs> {
  const m: WaitModule = require(WAIT_MODULE);
  const attempts = await m.waitForLogin(inputs.dsn, {
    timeoutMs: inputs.timeoutSeconds * 1000,
    onRetry: (reason) => pulumi.log.info(`${m.describeDsn(inputs.dsn)}: ${reason}; retrying`),
  });
  if (attempts > 1) pulumi.log.info(`${m.describeDsn(inputs.dsn)}: logged in after ${attempts} attempts`);
  return inputs;
}

export const postgresLoginProvider: pulumi.dynamic.ResourceProvider<PostgresLoginInputs> = {
  async create(inputs) {
    return { id: "postgres-login", outs: await wait(inputs) };
  },
  async diff(_id, olds, news) {
    return { changes: olds.dsn !== news.dsn || olds.timeoutSeconds !== news.timeoutSeconds };
  },
  async update(_id, _olds, news) {
    return { outs: await wait(news) };
  },
};

export class PostgresLogin extends pulumi.dynamic.Resource {
  constructor(name: string, args: PostgresLoginArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      postgresLoginProvider,
      name,
      { dsn: args.dsn, timeoutSeconds: args.timeoutSeconds ?? 600 },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "dsn"] },
      "loomworks",
      "PostgresLogin",
    );
  }
}
