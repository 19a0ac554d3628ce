import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ODOO_PBKDF2_ROUNDS,
  ab64Decode,
  ab64Encode,
  hashPbkdf2Sha512,
  parsePbkdf2Sha512,
  verifyPbkdf2Sha512,
} from "../../lib/tenant/passlib";
import { requireTool } from "../helpers/tools";

// Debian's python3-passlib (not a pyenv interpreter, which would not have it).
const PYTHON = "/usr/bin/python3";

/** Runs a snippet under passlib with JSON in and out. */
function passlib(script: string, input: unknown): unknown {
  const program = `import json, sys\nfrom passlib.hash import pbkdf2_sha512 as h\nargs = json.load(sys.stdin)\n${script}`;
  const r = spawnSync(PYTHON, ["-c", program], { input: JSON.stringify(input), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python passlib failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout);
}

// Computed once with python3-passlib 1.7.4:
//   h.using(rounds=1000, salt=b'saltsaltsalt1234').hash('pw')
const KNOWN =
  "$pbkdf2-sha512$1000$c2FsdHNhbHRzYWx0MTIzNA$nYI/i40ayg..P8o5fkGztgj4JTKPbowQKnFjU/Ixg4JIhv9RmTYceUjWal4XjuhcExt6dsv9rqnpnALQg2bbHw";

const PASSWORDS = ["pw", "correct horse battery staple", "pässwörd-ünïcode-✓", "a$b:c/d.e+f=g", ""];

describe("passlib pbkdf2_sha512", () => {
  it("reproduces a known passlib vector", async () => {
    expect(await hashPbkdf2Sha512("pw", { rounds: 1000, salt: Buffer.from("saltsaltsalt1234") })).toBe(KNOWN);
    expect(await verifyPbkdf2Sha512("pw", KNOWN)).toBe(true);
    expect(await verifyPbkdf2Sha512("pW", KNOWN)).toBe(false);
  });

  it("adapted base64 uses '.' for '+' and no padding, and round-trips", () => {
    const bytes = Buffer.from([0xfb, 0xef, 0xbe, 0xff]);
    expect(bytes.toString("base64")).toBe("++++/w==");
    expect(ab64Encode(bytes)).toBe("..../w");
    expect(ab64Decode("..../w")).toEqual(bytes);
    for (let n = 0; n < 40; n++) {
      const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(ab64Decode(ab64Encode(b))).toEqual(b);
    }
    expect(() => ab64Decode("ab+c")).toThrow();
  });

  it("rejects malformed hashes without throwing", async () => {
    for (const bad of [
      "",
      "admin",
      "$pbkdf2-sha256$1000$c2FsdA$AAAA",
      "$pbkdf2-sha512$01000$c2FsdHNhbHRzYWx0MTIzNA$" + KNOWN.split("$")[4],
      "$pbkdf2-sha512$1000$c2FsdHNhbHRzYWx0MTIzNA$short",
      "$pbkdf2-sha512$1000$$" + KNOWN.split("$")[4],
      KNOWN + "$extra",
    ]) {
      expect(parsePbkdf2Sha512(bad)).toBeUndefined();
      expect(await verifyPbkdf2Sha512("pw", bad)).toBe(false);
    }
  });

  it("uses Odoo 18's 600000 rounds by default, under a second per hash", async () => {
    const started = Date.now();
    const hash = await hashPbkdf2Sha512("admin");
    const elapsed = Date.now() - started;
    expect(hash.startsWith(`$pbkdf2-sha512$${ODOO_PBKDF2_ROUNDS}$`)).toBe(true);
    expect(parsePbkdf2Sha512(hash)?.salt.length).toBe(16);
    // Generous bound: the budget is 1 s on an idle machine, CI runners are slower and shared.
    expect(elapsed).toBeLessThan(5_000);
    expect(await verifyPbkdf2Sha512("admin", hash)).toBe(true);
  });

  describe("cross-checked live against python3-passlib", () => {
    beforeAll(() => requireTool("passlib"));

    it("passlib verifies our hashes", async () => {
      const cases = await Promise.all(
        PASSWORDS.map(async (pw) => ({ pw, hash: await hashPbkdf2Sha512(pw, { rounds: 1000 + pw.length }) })),
      );
      const ok = passlib("print(json.dumps([h.verify(c['pw'], c['hash']) for c in args]))", cases);
      expect(ok).toEqual(PASSWORDS.map(() => true));
      const wrong = passlib(
        "print(json.dumps([h.verify(c['pw'] + 'x', c['hash']) for c in args]))",
        cases,
      ) as boolean[];
      expect(wrong).toEqual(PASSWORDS.map(() => false));
    });

    it("we verify passlib's hashes (random salts, several round counts)", async () => {
      const hashes = passlib(
        "print(json.dumps([h.using(rounds=r).hash(p) for p in args['pws'] for r in args['rounds']]))",
        { pws: PASSWORDS, rounds: [1, 1001, 29000] },
      ) as string[];
      expect(hashes).toHaveLength(PASSWORDS.length * 3);
      let i = 0;
      for (const pw of PASSWORDS) {
        for (let r = 0; r < 3; r++, i++) {
          expect(await verifyPbkdf2Sha512(pw, hashes[i])).toBe(true);
          expect(await verifyPbkdf2Sha512(pw + "!", hashes[i])).toBe(false);
        }
      }
    });

    it("produces exactly passlib's string for the same salt and rounds", async () => {
      const salt = Buffer.from("0123456789abcdef0123", "utf8");
      const theirs = passlib(
        "print(json.dumps(h.using(rounds=2500, salt=args['salt'].encode()).hash(args['pw'])))",
        {
          salt: salt.toString("utf8"),
          pw: "pässwörd",
        },
      );
      expect(await hashPbkdf2Sha512("pässwörd", { rounds: 2500, salt })).toBe(theirs);
    });
  });
});
