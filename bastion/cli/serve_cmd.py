"""`bastion serve`: the configured chat channels, the HTTP API and the background jobs in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket

import typer

from bastion import __version__
from bastion.app import Services
from bastion.cli.chat_cmd import ensure_schema
from bastion.cli.common import console, fail, run_with_services, settings_or_exit


def check_port_free(host: str, port: int) -> None:
    """Exit with one clear line when the API port is taken (uvicorn would exit from inside a task instead)."""
    if port == 0:
        return  # any free port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option uvicorn binds with: a socket of a previous run in TIME_WAIT does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(
                f"cannot serve the API on {host}:{port}: {exc.strerror or exc} "
                "(is another `bastion serve` running? set BASTION_API__PORT to another port)"
            ) from None


def register(app: typer.Typer) -> None:
    """Add the `serve` command."""

    @app.command("serve")
    def serve() -> None:
        """Run the enabled channels (Telegram, Discord), the API, the position monitor and message delivery."""
        from bastion.serve import open_server

        settings = settings_or_exit()
        if settings.api.enabled:
            check_port_free(settings.api.host, settings.api.port)

        async def main(services: Services) -> None:
            await ensure_schema(services)
            async with open_server(services) as server:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, server.stop.set)
                running = [name for name, on in (("telegram", server.telegram), ("discord", server.discord)) if on]
                names = (
                    ", ".join(running)
                    or "no chat channel (enable BASTION_TELEGRAM__ENABLED or BASTION_DISCORD__ENABLED)"
                )
                api = f"API on {settings.api.host}:{settings.api.port}" if settings.api.enabled else "API off"
                console.print(f"Bastion {__version__} serving: {names}; {api}. Ctrl-C to stop.", highlight=False)
                await server.run()

        with contextlib.suppress(KeyboardInterrupt):
            run_with_services(main, settings)
        console.print("Stopped.")
