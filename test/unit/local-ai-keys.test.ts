/**
 * The local target's `<stateDir>/odoo/ai.env` (lib/odoo/localAiKeys.ts, dynamic-providers/localAiKeys.ts):
 * written 0600 in a 0700 directory; a POSIX shell loading it (`set -a; . ai.env`) gets every key as
 * is — quotes, `$`, backslashes and spaces included; refresh notices a hand edit, the diff rewrites
 * it; a new stateDir moves it; delete removes it.
 */
import { execFileSync } from "node:child_process";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLocalAiKeys,
  deleteLocalAiKeys,
  readLocalAiKeys,
  updateLocalAiKeys,
} from "../../lib/odoo/localAiKeys";
import { diffLocalAiKeys } from "../../lib/odoo/provider";

const KEYS = {
  OPENAI_API_KEY: "sk-proj-0123456789abcdef",
  ANTHROPIC_API_KEY: `sk-ant-'quoted' "double" $HOME \`cmd\` back\\slash and spaces`,
};

/** The variables a shell sees after loading the file the documented way. */
function loadedBy(shell: string, file: string, names: string[]): Record<string, string> {
  const script = `set -a; . "$1"; set +a; ${names.map((n) => `printf '%s\\0' "$${n}"`).join("; ")}`;
  const out = execFileSync(shell, ["-c", script, shell, file], {
    encoding: "utf8",
    env: { PATH: process.env.PATH },
  });
  const values = out.split("\0").slice(0, names.length);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

describe("LocalAiKeys: <stateDir>/odoo/ai.env", () => {
  let root: string;
  beforeAll(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-ai-keys-"));
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it("is written 0600 in a 0700 directory, and a shell loading it gets every key unchanged", async () => {
    const stateDir = path.join(root, "state");
    const { id, outs } = await createLocalAiKeys({ stateDir, keys: KEYS });
    expect(outs.path).toBe(path.join(stateDir, "odoo", "ai.env"));
    expect(id).toBe(`local-ai-keys:${outs.path}`);
    expect(((await fsp.stat(outs.path)).mode & 0o777).toString(8)).toBe("600");
    expect(((await fsp.stat(path.dirname(outs.path))).mode & 0o777).toString(8)).toBe("700");
    for (const shell of ["sh", "bash"])
      expect(loadedBy(shell, outs.path, Object.keys(KEYS)), shell).toEqual(KEYS);
    expect(outs.mode).toBe("0600");
  });

  it("refresh sees a hand edit or a mode change; the diff then rewrites it; a changed key is an update", async () => {
    const stateDir = path.join(root, "drift");
    const { outs } = await createLocalAiKeys({ stateDir, keys: KEYS });
    expect(diffLocalAiKeys(outs, { stateDir, keys: KEYS }).changes).toBe(false);

    await fsp.appendFile(outs.path, "EXTRA=1\n");
    await fsp.chmod(outs.path, 0o644);
    const found = await readLocalAiKeys(outs);
    expect(found?.mode).toBe("0644");
    expect(found?.sha256).not.toBe(outs.sha256);
    expect(diffLocalAiKeys(found as typeof outs, { stateDir, keys: KEYS })).toMatchObject({
      changes: true,
      replaces: [],
    });

    const rotated = { ...KEYS, OPENAI_API_KEY: "sk-proj-rotated-9876543210" };
    const d = diffLocalAiKeys(outs, { stateDir, keys: rotated });
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const again = await updateLocalAiKeys(found as typeof outs, { stateDir, keys: rotated });
    expect(loadedBy("sh", again.path, ["OPENAI_API_KEY"])).toEqual({
      OPENAI_API_KEY: rotated.OPENAI_API_KEY,
    });
    expect(((await fsp.stat(again.path)).mode & 0o777).toString(8)).toBe("600");
  });

  it("moves with the stateDir, is gone after delete, and read then reports it gone", async () => {
    const first = path.join(root, "first");
    const second = path.join(root, "second");
    const { outs } = await createLocalAiKeys({ stateDir: first, keys: KEYS });
    const moved = await updateLocalAiKeys(outs, { stateDir: second, keys: KEYS });
    expect(moved.path).toBe(path.join(second, "odoo", "ai.env"));
    await expect(fsp.access(outs.path)).rejects.toThrow();
    await deleteLocalAiKeys(moved);
    await expect(fsp.access(moved.path)).rejects.toThrow();
    expect(await readLocalAiKeys(moved)).toBeUndefined();
  });
});
