"""``liquidation-harness liquidate``: the panic button, for one account or a fleet.

Order of business: read and validate everything (configuration, target, keys from the
environment, the accounts file) -> exit 2 on any problem, nothing sent; a dry run reads the
account(s) and prints the table; otherwise production needs confirmation (a TTY: type the key's
last 4 characters, or for a fleet the number of production accounts; else ``--yes``; no TTY and no
``--yes``: exit 2, nothing sent); then every account is flattened concurrently and a summary
printed. Exit 0 only when every account is flat (COMPLETED), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.bot.logs import configure_logging
from harness.core.config import ENVIRONMENT_VARIABLE, ENVIRONMENTS, SWITCHES, LiquidationConfig, build_config, load_raw
from harness.core.errors import ConfigError
from harness.exchanges.binance.session import transport_from_env
from harness.panic.accounts import Account, load_accounts, parse_symbols, single_account
from harness.panic.progress import display_for, dry_run_table, summary_table
from harness.panic.run import Fleet

log = logging.getLogger(__name__)

EXIT_FLAT, EXIT_NOT_FLAT, EXIT_USAGE = 0, 1, 2
DEFAULT_REASON = "operator: liquidation-harness liquidate"


class Refused(Exception):
    """Stop before anything is sent (exit 2)."""


def _config(environment: str, config_file: Path | None) -> LiquidationConfig:
    """The profile/file/variables as everywhere, with the three switches on: the operator asked."""
    _, values, sources = load_raw(environment, config_file)
    off = [name for name in SWITCHES if values.get(name) is False]
    if off:
        log.warning("liquidate: %s off in the configuration; turned on (the operator asked for a liquidation)", ", ".join(off))
    for name in SWITCHES:
        values[name] = True
        sources[name] = "liquidate command"
    return build_config(values, sources)


def confirm(accounts: list[Account], *, yes: bool, tty: bool, ask: Callable[[str], str]) -> str:
    """How production was confirmed ("not production", "--yes", "typed ..."); Refused otherwise."""
    production = [a for a in accounts if a.target.is_production]
    if not production:
        return "not production"
    if yes:
        return "--yes"
    names = ", ".join(a.name for a in production)
    if not tty:
        raise Refused(f"{len(production)} production account(s) ({names}): confirmation needed; no terminal to ask on, "
                      "so pass --yes to flatten them (or --dry-run to look first)")
    if len(accounts) == 1:
        account = production[0]
        typed = ask(f"This flattens PRODUCTION account {account.target.describe()} now (cancels every order, closes every "
                    "position). Type the last 4 characters of its API key to confirm").strip()
        if typed != account.fingerprint:
            raise Refused("confirmation did not match the API key's last 4 characters: nothing was sent")
        return "typed the key's last 4 characters"
    typed = ask(f"This flattens {len(production)} PRODUCTION account(s) now: {names}. "
                "Type the number of production accounts to confirm").strip()
    if typed != str(len(production)):
        raise Refused(f"confirmation {typed!r} is not {len(production)}: nothing was sent")
    return "typed the number of production accounts"


def _ask(prompt: str) -> str:
    return click.prompt(prompt, default="", show_default=False, err=True)


@click.command("liquidate")
@click.option("--accounts", "accounts_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML fleet file: one [[account]] table per account (name, target, key_var, secret_var, symbols); "
                   "flattens them all concurrently.")
@click.option("--dry-run", is_flag=True, help="Read the account(s) and print what would be cancelled and closed; send nothing else.")
@click.option("--yes", is_flag=True, help="Confirm a production liquidation without asking (needed when there is no terminal).")
@click.option("--reason", default=DEFAULT_REASON, show_default=True, help="Why: written into every account's audit trail.")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), envvar=ENVIRONMENT_VARIABLE, default=None,
              help=f"Configuration profile (timeout, retries) and default target (default from ${ENVIRONMENT_VARIABLE}; "
                   "else testnet with --testnet/--demo, production otherwise).")
@click.option("--testnet", is_flag=True, help="Target Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET).")
@click.option("--demo", is_flag=True, help="Target Binance Demo Trading (keys from BINANCE_DEMO_API_KEY/SECRET).")
@click.option("--exchange-url", help="Exchange root URL, e.g. the embedded exchange http://127.0.0.1:PORT.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML file with liquidation settings.")
@click.option("--symbols", help="Only these comma-separated symbols (default: the whole account); what is left alone is listed.")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("logs"), show_default=True,
              help="audit.jsonl, liquidation-result.json and trading.log (a fleet: <log-dir>/<name>/ per account).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines for machines: progress, then a summary (or dry_run) object.")
def liquidate_command(accounts_file: Path | None, dry_run: bool, yes: bool, reason: str, environment: str | None, testnet: bool,
                      demo: bool, exchange_url: str | None, config_file: Path | None, symbols: str | None, log_dir: Path,
                      as_json: bool) -> None:
    """The panic button: cancel every order and close every position NOW, on one account or a fleet.

    Same engine, deadline, retries, audit trail and result file as the bot. Keys only from the
    environment. Production needs --yes or a typed confirmation. Exit 0 when every account is flat,
    1 when any is not, 2 on a usage or configuration error (nothing sent).
    """
    # --testnet / --demo name the target outright: the testnet profile, not a production deployment's
    environment = environment or ("testnet" if testnet or demo else "production")
    try:
        if accounts_file is not None and (testnet or demo or exchange_url):
            raise ConfigError("--accounts", str(accounts_file), "the targets come from the file: no --testnet, --demo or --exchange-url with it")
        if not reason.strip():
            raise ConfigError("--reason", reason, "a non-empty text saying why")
        scope = parse_symbols(symbols, field="--symbols") if symbols is not None else ()
        config = _config(environment, config_file)
        if accounts_file is not None:
            accounts = load_accounts(accounts_file)
            if scope:
                accounts = [Account(a.name, a.target, a.key_var, a.secret_var, a.api_key, a.api_secret, a.symbols or scope)
                            for a in accounts]
        else:
            accounts = [single_account(environment, exchange_url, testnet, demo, scope)]
        transport_from_env()  # a bad $BINANCE_TRANSPORT is a usage error before anything is sent
        confirmed_by = "dry run" if dry_run else confirm(accounts, yes=yes, tty=sys.stdin.isatty(), ask=_ask)
        _prepare_logs(log_dir, [a.name for a in accounts] if accounts_file is not None else [])
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Refused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    fleet = Fleet(accounts, config, log_dir, reason.strip(), dry_run=dry_run, confirmed_by=confirmed_by,
                  per_account_dirs=accounts_file is not None)
    out = sys.stdout
    display = display_for(out, fleet.runs, as_json=as_json, tty=out.isatty())
    fleet.changed = display.changed
    runs = asyncio.run(_run(fleet, display))
    if dry_run:
        ok = all(r.snapshot is not None for r in runs)
        if as_json:
            click.echo(json.dumps({"type": "dry_run", "accounts": [r.to_dict() for r in runs]}))
        else:
            click.echo(dry_run_table(runs))
        sys.exit(EXIT_FLAT if ok else EXIT_NOT_FLAT)
    flat = all(r.flat for r in runs)
    if as_json:
        click.echo(json.dumps({"type": "summary", "flat": flat, "accounts": [r.to_dict() for r in runs]}, default=str))
    else:
        click.echo(summary_table(runs))
    sys.exit(EXIT_FLAT if flat else EXIT_NOT_FLAT)


async def _run(fleet: Fleet, display: Any) -> list:
    async with display:
        return await fleet.run()


def _prepare_logs(log_dir: Path, names: list[str]) -> None:
    """The log directories exist and are writable, and logging goes to <log-dir>/trading.log (stderr: warnings)."""
    try:
        configure_logging(log_dir, "INFO")
        for name in names:
            (log_dir / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError("--log-dir", str(log_dir), f"a writable directory ({exc.strerror or exc})") from None
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_harness", False) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)  # the progress display is what a person reads


__all__ = ["EXIT_FLAT", "EXIT_NOT_FLAT", "EXIT_USAGE", "confirm", "liquidate_command"]
