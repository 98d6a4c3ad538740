"""The `interlock` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import diagram


def _diagram(args: argparse.Namespace) -> int:
    out = Path(args.out)
    stale = []
    for name, text in diagram.files().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    readme = Path(args.readme)
    if readme.exists():
        current = readme.read_text(encoding="utf-8")
        text = diagram.embed_in_readme(current)
        if text != current:
            stale.append(str(readme))
            if not args.check:
                readme.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            f"interlock diagram: {out}/ is stale ({', '.join(stale)}); run `make diagrams`",
            file=sys.stderr,
        )
        return 1
    if stale:
        print(f"interlock diagram: wrote {', '.join(stale)}")
    else:
        print(f"interlock diagram: {out}/ and {readme} are up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="An Anthropic-API proxy whose core is an explicit state-machine retry engine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser(
        "diagram",
        help="write the state chart and transition table generated from the engine",
        description="Generate diagrams/ (Mermaid chart, Markdown transition table) from the "
        "engine's transition table.",
    )
    d.add_argument("--out", default="diagrams", help="output directory (default: diagrams)")
    d.add_argument(
        "--readme",
        default="README.md",
        help="also refresh the chart embedded in this file between its markers "
        "(default: README.md; skipped when the file does not exist)",
    )
    d.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is stale"
    )
    d.set_defaults(func=_diagram)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
