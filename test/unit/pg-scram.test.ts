import { describe, expect, it } from "vitest";
import { roleSecret, scramSha256Verifier } from "../../lib/pg/scram";

const PENCIL_VERIFIER =
  "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

describe("SCRAM-SHA-256 verifiers", () => {
  it("computes the verifier (vector cross-checked with Python hashlib/hmac)", () => {
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    expect(scramSha256Verifier("pencil", { salt })).toBe(PENCIL_VERIFIER);
    expect(scramSha256Verifier("pencil")).not.toBe(scramSha256Verifier("pencil")); // random salt
  });

  it.each(["pässwort", "tab\there", "line\nbreak", "emoji 🔑"])(
    "refuses a password SASLprep could change: %j",
    (password) => {
      expect(() => scramSha256Verifier(password)).toThrow(/only printable ASCII/);
    },
  );

  it("gives the role a verifier when it can, else the password for the server to hash", () => {
    expect(roleSecret("hunter2-secret")).toMatch(/^SCRAM-SHA-256\$4096:[^$]+\$[^:]+:.+=$/);
    expect(roleSecret("pässwort")).toBe("pässwort");
    expect(roleSecret("")).toBe("");
  });
});
