"""The ERP side of bench/undo-erp.ts: one batch of ORM writes per scenario and round, timed.

Run with the Python of the installed Odoo 18 (its `odoo` command's first line), never inside the
ERP server: it loads each database's registry once, then for every round and scenario (in the
order given) runs the same batch in one transaction, committed:

  100 companies (res.partner), each with two contacts (child_ids), two tags (category_id) and a
  message in its chatter (message_post), then a write on each company and its contacts.

A scenario whose `operation` is true starts the transaction with
`SELECT loomworks_undo.begin_operation(...)`, as the ERP's AI tools do. Timed per batch: wall time
from the first statement to the end of COMMIT, this process's CPU time, and the database backend's
CPU time (/proc/<pid>/schedstat of the connection's server process, same machine), and the load
averages right after it. One JSON line per batch on stdout; everything else goes to stderr.

    python3 undo-erp-workload.py CONFIG_JSON

CONFIG_JSON: {"odoo": [odoo command-line options], "rounds": N, "partners": N,
              "scenarios": [{"name", "database", "operation"}], "warmup": N}
"""

import json
import os
import sys
import time


def backend_cpu_ns(cr):
    cr.execute("SELECT pg_backend_pid()")
    pid = cr.fetchone()[0]
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def batch(env, partners, tag_ids, label):
    """The ORM writes of one batch: creates, chatter messages, writes."""
    Partner = env["res.partner"]
    companies = Partner.create(
        [
            {
                "name": f"{label} company {i}",
                "is_company": True,
                "email": f"info{i}@{label}.example",
                "phone": f"+1 555 {i:04d}",
                "street": f"{i} Loom Street",
                "city": "Weaverton",
                "category_id": [(6, 0, [tag_ids[i % len(tag_ids)], tag_ids[(i + 1) % len(tag_ids)]])],
                "child_ids": [
                    (0, 0, {"name": f"{label} contact {i}.{k}", "email": f"c{i}.{k}@{label}.example", "function": "Buyer"})
                    for k in (1, 2)
                ],
            }
            for i in range(partners)
        ]
    )
    for company in companies:
        company.message_post(body=f"Imported by the AI assistant ({label})", message_type="comment")
    companies.write({"comment": f"reviewed ({label})"})
    companies.child_ids.write({"function": "Purchasing"})
    env.flush_all()
    return len(companies) + len(companies.child_ids)


def main():
    import odoo
    from odoo import SUPERUSER_ID, api
    from odoo.modules.registry import Registry

    cfg = json.loads(sys.argv[1])
    odoo.tools.config.parse_config(cfg["odoo"])
    registries = {s["database"]: Registry(s["database"]) for s in cfg["scenarios"]}
    tags = {}
    for database, registry in registries.items():
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Tag = env["res.partner.category"]
            found = Tag.search([("name", "like", "bench tag %")])
            if len(found) < 5:
                found |= Tag.create([{"name": f"bench tag {i}"} for i in range(5)])
            tags[database] = found.ids
            cr.commit()

    scenarios = cfg["scenarios"]
    total = cfg["rounds"] + cfg["warmup"]
    for r in range(total):
        order = [scenarios[(i + r) % len(scenarios)] for i in range(len(scenarios))]
        for s in order:
            registry = registries[s["database"]]
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                cpu0, backend0 = time.process_time(), backend_cpu_ns(cr)
                cr.execute("SELECT pg_current_wal_lsn()::text")
                lsn0 = cr.fetchone()[0]
                t0 = time.perf_counter()
                if s["operation"]:
                    cr.execute("SELECT loomworks_undo.begin_operation('bench-erp', 'write', 'batch of partners')")
                rows = batch(env, cfg["partners"], tags[s["database"]], f"{s['name']}-{r}")
                cr.commit()
                wall = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                backend = (backend_cpu_ns(cr) - backend0) / 1e9
                cr.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn0])
                wal = int(cr.fetchone()[0])
                captured = None
                if s["operation"]:
                    cr.execute(
                        "SELECT count(*) FROM loomworks_undo.change_log WHERE operation_id = "
                        "(SELECT id FROM loomworks_undo.operation_log ORDER BY started_at DESC LIMIT 1)"
                    )
                    captured = cr.fetchone()[0]
                cr.commit()
            line = {
                "scenario": s["name"],
                "round": r - cfg["warmup"],
                "wallMs": wall * 1000,
                "pythonCpuMs": cpu * 1000,
                "backendCpuMs": backend * 1000,
                "walBytes": wal,
                "records": rows,
                "capturedRows": captured,
                "load": [round(x, 2) for x in os.getloadavg()],
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
