import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RESERVED_SUBDOMAINS, SUBDOMAIN_RULES, checkSubdomain } from "../../infra/config/subdomain";

const LOWER_ALNUM = [..."abcdefghijklmnopqrstuvwxyz0123456789"];
const alnum = fc.constantFrom(...LOWER_ALNUM);

/**
 * Valid subdomains of every length from 3 to 63: lowercase letters and digits, with single
 * hyphens only between two of them, and not a reserved name.
 */
const validSubdomain: fc.Arbitrary<string> = fc
  .integer({ min: 3, max: 63 })
  .chain((n) =>
    fc.tuple(
      fc.array(alnum, { minLength: n, maxLength: n }),
      fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    ),
  )
  .map(([chars, hyphens]) => {
    const out = [...chars];
    for (let i = 1; i < out.length - 1; i++) {
      if (hyphens[i] && out[i - 1] !== "-") out[i] = "-";
    }
    return out.join("");
  })
  .filter((s) => !RESERVED_SUBDOMAINS.has(s));

/** Oracle written independently of the implementation's step-by-step checks. */
function isValidByOracle(s: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/.test(s) && !s.includes("--") && !RESERVED_SUBDOMAINS.has(s);
}

describe("checkSubdomain properties", () => {
  it("accepts every valid label", () => {
    fc.assert(
      fc.property(validSubdomain, (s) => {
        expect(checkSubdomain(s)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses strings shorter than 3 characters", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2, unit: "binary-ascii" }), (s) => {
        expect(checkSubdomain(s)).toBe(SUBDOMAIN_RULES.tooShort);
      }),
    );
  });

  it("refuses strings longer than 63 characters", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ minLength: 64, maxLength: 300 }),
          validSubdomain.map((s) => s.padEnd(64, "a")),
        ),
        (s) => {
          expect(checkSubdomain(s)).toBe(SUBDOMAIN_RULES.tooLong);
        },
      ),
    );
  });

  it("refuses any string of valid length with an uppercase letter", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 3, maxLength: 63, unit: "grapheme-ascii" }).filter((s) => /[A-Z]/.test(s)),
        (s) => {
          expect(checkSubdomain(s)).toBe(SUBDOMAIN_RULES.uppercase);
        },
      ),
    );
    fc.assert(
      fc.property(
        validSubdomain.filter((s) => /[a-z]/.test(s)),
        fc.nat(),
        (s, k) => {
          const letters = [...s].flatMap((c, i) => (/[a-z]/.test(c) ? [i] : []));
          const i = letters[k % letters.length];
          const t = s.slice(0, i) + s[i].toUpperCase() + s.slice(i + 1);
          expect(checkSubdomain(t)).toBe(SUBDOMAIN_RULES.uppercase);
        },
      ),
    );
  });

  it("refuses a valid label with one character outside [a-z0-9-]", () => {
    const badChar = fc
      .integer({ min: 0, max: 0xffff })
      .map((code) => String.fromCharCode(code))
      .filter((c) => !/[a-zA-Z0-9-]/.test(c));
    fc.assert(
      fc.property(validSubdomain, fc.nat(), badChar, (s, k, c) => {
        const i = k % s.length;
        const t = s.slice(0, i) + c + s.slice(i + 1);
        expect(checkSubdomain(t)).toBe(SUBDOMAIN_RULES.invalidChar);
      }),
    );
  });

  it("refuses a leading or trailing hyphen", () => {
    fc.assert(
      fc.property(validSubdomain, fc.constantFrom("start", "end", "both"), (s, where) => {
        let t = s;
        if (where !== "end") t = "-" + t.slice(1);
        if (where !== "start") t = t.slice(0, -1) + "-";
        expect(checkSubdomain(t)).toBe(SUBDOMAIN_RULES.edgeHyphen);
      }),
    );
  });

  it('refuses "--" anywhere inside', () => {
    fc.assert(
      fc.property(
        validSubdomain.filter((s) => s.length <= 61),
        fc.nat(),
        (s, k) => {
          const i = 1 + (k % (s.length - 1));
          const t = s.slice(0, i) + "--" + s.slice(i);
          expect(checkSubdomain(t)).toBe(SUBDOMAIN_RULES.doubleHyphen);
        },
      ),
    );
  });

  it("refuses every reserved name (names under 3 characters as too short)", () => {
    for (const name of RESERVED_SUBDOMAINS) {
      expect(checkSubdomain(name)).toBe(
        name.length < 3 ? SUBDOMAIN_RULES.tooShort : SUBDOMAIN_RULES.reserved,
      );
    }
  });

  it("agrees with an independent oracle on arbitrary short strings", () => {
    const unit = fc.constantFrom(..."abcxyz019-_.AZ ");
    fc.assert(
      fc.property(fc.oneof(fc.string({ minLength: 0, maxLength: 70, unit }), validSubdomain), (s) => {
        expect(checkSubdomain(s) === undefined).toBe(isValidByOracle(s));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("checkSubdomain examples", () => {
  it.each(["acme", "a1b", "my-company", "123", "a-b-c", "x".repeat(63), "3m-co"])("accepts %j", (s) => {
    expect(checkSubdomain(s)).toBeUndefined();
  });

  it.each([
    ["", SUBDOMAIN_RULES.tooShort],
    ["ab", SUBDOMAIN_RULES.tooShort],
    ["mx", SUBDOMAIN_RULES.tooShort],
    ["x".repeat(64), SUBDOMAIN_RULES.tooLong],
    ["Acme", SUBDOMAIN_RULES.uppercase],
    ["ACME", SUBDOMAIN_RULES.uppercase],
    ["ac_me", SUBDOMAIN_RULES.invalidChar],
    ["acme.example", SUBDOMAIN_RULES.invalidChar],
    ["acmé", SUBDOMAIN_RULES.invalidChar],
    [" acme", SUBDOMAIN_RULES.invalidChar],
    ["-acme", SUBDOMAIN_RULES.edgeHyphen],
    ["acme-", SUBDOMAIN_RULES.edgeHyphen],
    ["ac--me", SUBDOMAIN_RULES.doubleHyphen],
    ["xn--80ak6aa92e", SUBDOMAIN_RULES.doubleHyphen],
    ["www", SUBDOMAIN_RULES.reserved],
    ["admin", SUBDOMAIN_RULES.reserved],
    ["postgres", SUBDOMAIN_RULES.reserved],
    ["template0", SUBDOMAIN_RULES.reserved],
    ["template1", SUBDOMAIN_RULES.reserved],
    ["loomworks", SUBDOMAIN_RULES.reserved],
    ["localhost", SUBDOMAIN_RULES.reserved],
  ])("refuses %j: %s", (s, message) => {
    expect(checkSubdomain(s)).toBe(message);
  });

  it("refuses non-strings", () => {
    expect(checkSubdomain(42)).toBe(SUBDOMAIN_RULES.notString);
    expect(checkSubdomain(undefined)).toBe(SUBDOMAIN_RULES.notString);
  });

  it("reserves the names the brief lists, including PostgreSQL's system databases", () => {
    for (const name of [
      "www",
      "api",
      "portal",
      "mail",
      "static",
      "preview",
      "postgres",
      "template0",
      "template1",
    ]) {
      expect(RESERVED_SUBDOMAINS.has(name)).toBe(true);
    }
  });
});
