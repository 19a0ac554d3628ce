/**
 * `node bin/infra/automation/run.js <up|preview|refresh|destroy> [--stack NAME] [--refresh]`: drives a stack of this
 * project through the Pulumi Automation API, streaming the engine's output. Used by the README's set-up
 * command and by CI.
 */
import { openStack } from "./workspace";

const ACTIONS = ["up", "preview", "refresh", "destroy"] as const;
type Action = (typeof ACTIONS)[number];

async function main(argv: string[]): Promise<void> {
  const action = argv[0] as Action;
  const stackFlag = argv.indexOf("--stack");
  const stackName = stackFlag >= 0 ? argv[stackFlag + 1] : "dev";
  // --refresh: read the live state first (a server stopped by a reboot is then started again).
  const refresh = argv.includes("--refresh");
  if (!ACTIONS.includes(action) || !stackName) {
    throw new Error(`usage: run.js <${ACTIONS.join("|")}> [--stack NAME] [--refresh]`);
  }
  const stack = await openStack({ stackName });
  const onOutput = (out: string) => process.stdout.write(out);
  switch (action) {
    case "up":
      await stack.up({ onOutput, color: "auto", refresh });
      break;
    case "preview":
      await stack.preview({ onOutput, color: "auto", diff: true, refresh });
      break;
    case "refresh":
      await stack.refresh({ onOutput, color: "auto" });
      break;
    case "destroy":
      await stack.destroy({ onOutput, color: "auto" });
      break;
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  // The engine's own output has already been streamed; the wrapper's stack trace adds nothing.
  const message = err.message.split("\n").filter((l) => !/^\s+at /.test(l));
  console.error(message.slice(-40).join("\n"));
  process.exit(1);
});
