"""``python -m langchain_tiered_router.emulator --script FILE``: serve until SIGINT/SIGTERM.

Prints the endpoint URL on one line once the emulator listens.
"""

from __future__ import annotations

import argparse

from ._emulator import serve_forever


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m langchain_tiered_router.emulator",
                                     description="A local Amazon Bedrock Runtime emulator.")
    parser.add_argument("--script", help="YAML or JSON script of answers (default: answer 'OK')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    parser.add_argument("--s3-endpoint-url", default=None,
                        help="S3 API that batch inference jobs read and write (e.g. a moto server)")
    args = parser.parse_args(argv)
    serve_forever(args.script, args.host, args.port, s3_endpoint_url=args.s3_endpoint_url)


if __name__ == "__main__":
    main()

