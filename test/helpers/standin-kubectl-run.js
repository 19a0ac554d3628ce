#!/usr/bin/env node
// STAND-IN for `kubectl run --attach --rm` (there is no cluster here), used by
// test/integration/template-pod.test.ts. It is NOT kubectl: it logs its arguments, reads the pod
// from `--overrides`, and runs the pod's command on this machine with the pod's environment — each
// secretKeyRef resolved from $STANDIN_SECRETS (JSON: {"<secret>/<key>": value}; a reference to
// anything else fails the pod, as the kubelet refuses to start a container whose Secret key is
// missing), the in-cluster PGHOST/PGPORT replaced by $STANDIN_PGHOST/$STANDIN_PGPORT — and exits
// with the command's exit code, as kubectl does.
"use strict";
const { appendFileSync } = require("node:fs");
const { spawnSync } = require("node:child_process");

const args = process.argv.slice(2);
if (process.env.STANDIN_KUBECTL_LOG)
  appendFileSync(process.env.STANDIN_KUBECTL_LOG, JSON.stringify(args) + "\n");
if (args[0] !== "run") {
  process.stderr.write(`standin kubectl: only "run" is supported (got ${args[0]})\n`);
  process.exit(2);
}
const overrides = args.find((a) => a.startsWith("--overrides="));
const pod = JSON.parse(overrides.slice("--overrides=".length));
const container = pod.spec.containers[0];
const secrets = JSON.parse(process.env.STANDIN_SECRETS || "{}");
const env = { PATH: process.env.PATH };
for (const e of container.env) {
  if (!e.valueFrom) {
    env[e.name] = e.value;
    continue;
  }
  const ref = e.valueFrom.secretKeyRef;
  const value = ref ? secrets[`${ref.name}/${ref.key}`] : undefined;
  if (value === undefined) {
    process.stderr.write(
      `standin kubectl: CreateContainerConfigError: ${JSON.stringify(e.valueFrom)} not found\n`,
    );
    process.exit(1);
  }
  env[e.name] = value;
}
if (process.env.STANDIN_PGHOST) env.PGHOST = process.env.STANDIN_PGHOST;
if (process.env.STANDIN_PGPORT) env.PGPORT = process.env.STANDIN_PGPORT;
const r = spawnSync(container.command[0], container.command.slice(1), { env, stdio: "inherit" });
process.exit(r.status ?? 1);
