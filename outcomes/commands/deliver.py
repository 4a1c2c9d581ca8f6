"""Commands that keep and send the record: audit, signals and digest."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from outcomes.catalog.query import load_catalog
from outcomes.commands.common import CliError
from outcomes.ingest import db
from outcomes.present import files as output
from outcomes.privacy import audit


def cmd_audit(args) -> int:
    path = args.log or audit.log_path()
    if args.action == "verify":
        anchor = None
        if args.anchor:
            seq, _, digest = args.anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CliError(f"--anchor {args.anchor!r}: expected SEQ:SHA256 (as printed by audit verify)")
            anchor = (int(seq), digest.lower())
        from outcomes.privacy.audit_verify import verify

        state = verify(path, anchor)
        print(state.summary(), file=sys.stdout if state.ok else sys.stderr)
        return 0 if state.ok else 1
    if args.action == "rotate":
        from outcomes.privacy.audit_retention import rotate

        moved = rotate(path)
        print(f"rotated {path} to {moved.name}" if moved else f"nothing to rotate in {path}")
        return 0
    from outcomes.privacy.audit_retention import prune

    removed = prune(path, args.years)
    years = args.years or audit.retention_years()
    print(
        f"removed {len(removed)} rotated file(s) older than {years} years"
        + (": " + ", ".join(removed) if removed else "")
    )
    return 0


def cmd_signals(args) -> int:
    from outcomes.measures import signal_scan

    con = db.connect(args.db)
    try:
        known = signal_scan.sites_of(con)
        unknown = [s for s in args.site or [] if s not in known]
        if unknown:
            raise CliError(f"unknown site {', '.join(unknown)} (the data has {', '.join(known)})")
        found = signal_scan.scan(con, sites=args.site or None)
    finally:
        con.close()
    sys.stdout.write(output.FORMATS[args.format](signal_scan.table(found)).rstrip("\n") + "\n")
    return 0


def when(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time such as 2025-11-03T07:05") from None


def cmd_digest(args) -> int:
    from outcomes.deliver import alerts, digest, mailer
    from outcomes.privacy import access

    try:
        config = digest.load_digests(args.config)
        catalog = load_catalog()
        rules = alerts.load_alerts(args.alerts, config.by_name(), catalog)
        roles = access.roles_path()
        if roles.exists():
            digest.check_roles(config, access.load_roles(roles), roles.name)
        settings = None if args.dry_run else mailer.load_settings()
        if settings is None and not args.dry_run:
            raise CliError(
                "no SMTP settings: set [smtp] host, port, username, password and from in "
                f".streamlit/secrets.toml or {mailer.ENV_PREFIX}HOST etc. (or use --dry-run DIR)"
            )
        now = args.now
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=config.timezone)
        outbox = digest.Outbox(settings, args.dry_run, audit.log_path(mailer.read_secrets().get("audit_log")))
        mode = "due" if args.due else "all" if args.all else "recipient"
        con = db.connect(args.db)
        try:
            report = digest.run(
                con,
                config,
                mode=mode,
                names=args.recipient,
                rules=rules,
                state_file=mailer.state_path(args.state),
                outbox=outbox,
                now=now,
                catalog=catalog,
            )
        finally:
            con.close()
    except mailer.Busy as exc:
        print(f"note: {exc}", file=sys.stderr)
        return 0
    except (
        digest.DigestConfigError,
        alerts.AlertConfigError,
        access.RolesError,
        mailer.SettingsError,
        mailer.StateError,
        audit.AuditError,
    ) as exc:
        raise CliError(str(exc)) from None
    for line in report.lines:
        print(line, file=sys.stderr if line.startswith("FAILED") else sys.stdout)
    if not report.lines:
        print("nothing due")
    return 1 if report.failed else 0
