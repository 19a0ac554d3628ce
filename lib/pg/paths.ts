import * as path from "node:path";

/** Where the local target keeps its cluster, backup repository and filestores. All paths absolute. */
export interface ClusterPaths {
  /** The state directory itself (resolved). */
  stateDir: string;
  /** `<stateDir>/postgres`, owned by postgres. */
  postgresDir: string;
  /** `<stateDir>/postgres/data`: PGDATA (mode 0700, owned by postgres). */
  dataDir: string;
  /** `<stateDir>/postgres/data/postgresql.conf`, rendered from templates/postgresql.conf.tmpl. */
  postgresqlConf: string;
  /** `<stateDir>/postgres/run`: unix_socket_directories (connect with `-h <socketDir>`). */
  socketDir: string;
  /** `<stateDir>/postgres/log`: server logs (logging_collector) and `startup.log` from pg_ctl. */
  logDir: string;
  /** `<stateDir>/postgres/log/startup.log`: pg_ctl's `-l` file (output before the collector starts). */
  startupLog: string;
  /** `<stateDir>/pgbackrest`, owned by postgres. */
  pgbackrestDir: string;
  /** `<stateDir>/pgbackrest/repo`: repo1-path. */
  repoPath: string;
  /** `<stateDir>/pgbackrest/spool`: spool-path for asynchronous archiving. */
  spoolPath: string;
  /** `<stateDir>/pgbackrest/log`: pgBackRest's log-path. */
  pgbackrestLogPath: string;
  /** `<stateDir>/pgbackrest/lock`: lock-path (keeps clusters on one machine apart). */
  lockPath: string;
  /** `<stateDir>/pgbackrest/pgbackrest.conf` (mode 0600: may hold the cipher passphrase). */
  pgbackrestConf: string;
  /** `<stateDir>/filestore`: Odoo filestores, one subdirectory per tenant database. */
  filestoreDir: string;
}

export function clusterPaths(stateDir: string): ClusterPaths {
  const root = path.resolve(stateDir);
  const postgresDir = path.join(root, "postgres");
  const dataDir = path.join(postgresDir, "data");
  const logDir = path.join(postgresDir, "log");
  const pgbackrestDir = path.join(root, "pgbackrest");
  return {
    stateDir: root,
    postgresDir,
    dataDir,
    postgresqlConf: path.join(dataDir, "postgresql.conf"),
    socketDir: path.join(postgresDir, "run"),
    logDir,
    startupLog: path.join(logDir, "startup.log"),
    pgbackrestDir,
    repoPath: path.join(pgbackrestDir, "repo"),
    spoolPath: path.join(pgbackrestDir, "spool"),
    pgbackrestLogPath: path.join(pgbackrestDir, "log"),
    lockPath: path.join(pgbackrestDir, "lock"),
    pgbackrestConf: path.join(pgbackrestDir, "pgbackrest.conf"),
    filestoreDir: path.join(root, "filestore"),
  };
}
