import { describe, expect, it } from "vitest";
import { tenantDsnFromOutputs } from "../../lib/ops/connect";
import { describePlan, operatorMustConfirm, type UndoResult } from "../../lib/undo/undo";

describe("the operator's undo connects as the tenant", () => {
  const outputs = {
    tenants: {
      value: { acme: { url: "http://acme.localhost:8080/", dsn: "postgres://acme:pw@h:5432/acme" } },
    },
  };

  it("takes the tenant's own DSN from the stack outputs", () => {
    expect(tenantDsnFromOutputs(outputs, "acme", "dev")).toBe("postgres://acme:pw@h:5432/acme");
  });

  it("names the tenant and the stack when there is none", () => {
    expect(() => tenantDsnFromOutputs(outputs, "globex", "dev")).toThrow(
      'no tenant "globex" with a dsn in the outputs of stack "dev"',
    );
    expect(() => tenantDsnFromOutputs({}, "acme", "prod")).toThrow('outputs of stack "prod"');
  });
});

describe("the operator's plan", () => {
  const plan: UndoResult = {
    operation_id: "op",
    applied: false,
    undo_operation_id: null,
    on_conflict: "abort",
    dry_run: true,
    rows: 1,
    restored: { inserted: 0, updated: 1, deleted: 0 },
    skipped: 0,
    conflicts: [],
    later_operations: [],
    tables: { res_partner: { rows: 1, inserted: 0, updated: 1, deleted: 0 } },
    confirmation_required: false,
  };

  it("names every table and asks even for one row", () => {
    expect(describePlan(plan)).toContain(
      "  table res_partner: 1 row(s) — 0 re-inserted, 1 restored, 0 deleted",
    );
    expect(operatorMustConfirm(plan)).toBe(true);
    expect(operatorMustConfirm({ rows: 0 })).toBe(false);
  });
});
