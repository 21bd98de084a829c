"""``crossfuse list models|configs|metrics|corruptions``: what each registry holds, one name per line."""

from __future__ import annotations

import argparse

KINDS = ("models", "configs", "metrics", "corruptions")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "list", help="list shipped models, training configs, metrics or corruptions",
        description="Print the names a registry accepts, with a one-line description each: shipped models "
                    "(--model), training configs (crossfuse train CONFIG), metrics per profile (crossfuse eval "
                    "--metrics) and input corruptions.")
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.add_argument("--profile", default=None, help="metrics: only this profile (default: every profile)")
    p.set_defaults(func=run)


def _first_line(text: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


def model_lines() -> list[str]:
    from crossfuse.models import DEFAULT_MODEL, MODELS, SPEC_FORMS

    lines = [f"{name}{' (default)' if name == DEFAULT_MODEL else ''}: {m.description}" for name, m in MODELS.items()]
    return lines + [f"--model also takes {', '.join(SPEC_FORMS[1:])}"]


def config_lines() -> list[str]:
    import tomllib

    from crossfuse.config import list_configs, resolve_path

    out = []
    for name in list_configs():
        with open(resolve_path(name), "rb") as f:
            out.append(f"{name}: {tomllib.load(f).get('description', '')}")
    return out


def metric_lines(profile: str | None) -> list[str]:
    from crossfuse.metrics import get_profile, list_metrics, list_profiles

    out = []
    for prof in [profile] if profile else list_profiles():
        p = get_profile(prof)
        out.append(f"[{prof}] {p.reference}")
        for name in list_metrics(prof):
            spec = p.metrics[name]
            better = "higher" if spec.higher_is_better else "lower"
            out.append(f"  {name}: {spec.description or name} ({better} is better)")
    return out


def corruption_lines() -> list[str]:
    from crossfuse.corruptions import CORRUPTIONS

    return [f"{name}: {_first_line(fn.__doc__)}" for name, fn in CORRUPTIONS.items()]


def run(args: argparse.Namespace) -> int:
    lines = {"models": model_lines, "configs": config_lines, "corruptions": corruption_lines,
             "metrics": lambda: metric_lines(args.profile)}[args.kind]()
    print("\n".join(lines))
    return 0
