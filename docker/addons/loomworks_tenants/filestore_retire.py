"""The filestore's garbage collector retires files instead of deleting them.

Odoo's filestore is content-addressed: a file is never rewritten, and the garbage collector
(``ir.attachment._gc_file_store``, an autovacuum job) deletes the files of the GC spool
(``<filestore>/checklist``) that no attachment references any more. The platform's snapshots do not
copy the filestore (lib/snapshot/snapshot.ts): a restore takes every file the restored database
references from the live filestore or from the tenant's retired area, so a file must outlive its
last reference for as long as a restore can go back to a moment that referenced it. This module
replaces the collector's unsafe part (run under the ``SHARE`` lock its caller takes) with one that
moves each unreferenced file to

    <filestore root>/.retired/<database>/<ms>/<name>

where ``<ms>`` is the database clock when the collection ran. The platform's retention job removes
a batch once no snapshot and no point of the recovery window is older than it
(lib/filestore/retired.ts). A file that cannot be moved stays where it is and keeps its spool
entry, so the next collection tries again: the collector never loses a file.
"""

import logging
import os

_logger = logging.getLogger(__name__)

RETIRED_DIR = ".retired"
SPOOL_DIR = "checklist"

_installed = False


def retired_batch(filestore, millis):
    """``<root>/.retired/<database>/<millis>`` for the filestore ``<root>/<database>``."""
    filestore = os.path.normpath(filestore)
    root, database = os.path.split(filestore)
    return os.path.join(root, RETIRED_DIR, database, str(int(millis)))


def _spool_entries(attachments):
    """The spool's entries: ``{"<dir>/<name>": path of the spool file}``."""
    spool = attachments._full_path(SPOOL_DIR)
    entries = {}
    for directory, _subdirs, files in os.walk(spool):
        prefix = os.path.basename(directory)
        for name in files:
            entries[prefix + "/" + name] = os.path.join(directory, name)
    return entries


def _retire(source, target):
    """Moves ``source`` to ``target``. True when done or nothing was there; False to try again later."""
    if not os.path.lexists(source):
        return True
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(source, target)
        return True
    except FileNotFoundError:
        return not os.path.lexists(source)
    except OSError:
        _logger.warning("filestore gc: could not retire %s to %s", source, target, exc_info=True)
        return False


def _collect(attachments):
    entries = _spool_entries(attachments)
    if not entries:
        return
    cr = attachments.env.cr
    cr.execute("SELECT (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000)::bigint")
    filestore = attachments._filestore()
    batch = retired_batch(filestore, cr.fetchone()[0])
    retired = 0
    for chunk in cr.split_for_in_conditions(list(entries)):
        cr.execute("SELECT store_fname FROM ir_attachment WHERE store_fname IN %s", [chunk])
        referenced = {row[0] for row in cr.fetchall()}
        for name in chunk:
            if name not in referenced:
                source = attachments._full_path(name)
                if not _retire(source, os.path.join(batch, os.path.relpath(source, filestore))):
                    continue
                retired += 1
            try:
                os.unlink(entries[name])
            except OSError:
                pass
    _logger.info("filestore gc: %d checked, %d retired to %s", len(entries), retired, batch)


def install():
    """Patches ``ir.attachment``'s collector (once per process)."""
    global _installed  # noqa: PLW0603
    if _installed:
        return
    from odoo.addons.base.models.ir_attachment import IrAttachment

    IrAttachment._gc_file_store_unsafe = _collect
    _installed = True
    _logger.info("loomworks_tenants: the filestore garbage collector retires files to %s/", RETIRED_DIR)
