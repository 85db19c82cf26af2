"""Files the service needs at run time that live outside the package in the source checkout.

The migrations (``migrations/``), the taxonomy (``seed/taxonomy.json``), the sample network
(``seed/sample_network.json``) and the HSDS profile (``profile/``) are kept at the top of the
checkout, where developers edit them.
The wheel carries copies of them under ``referral_net/_resources/`` at the same relative paths
(``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml), so an installed service
finds them with ``importlib.resources`` and needs no checkout. An editable install has no
``_resources``, so the checkout's own files are used.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BUNDLE_DIR = "_resources"


def resource_path(relative: str) -> Path:
    """The file or folder ``relative`` (a checkout-relative path such as ``"seed/taxonomy.json"``):
    the copy inside the installed package first, else the one in the source checkout.

    Raises FileNotFoundError when neither exists. The package must be installed as files (a
    wheel unpacked by pip or uv), not run from a zip: Alembic needs real paths.
    """
    package_dir = Path(str(files("referral_net")))
    bundled = package_dir / BUNDLE_DIR / relative
    if bundled.exists():
        return bundled
    # src/referral_net -> the checkout root, for an editable install.
    in_checkout = package_dir.parent.parent / relative
    if in_checkout.exists():
        return in_checkout
    raise FileNotFoundError(
        f"{relative} not found in the installed package ({bundled}) nor in a source checkout "
        f"({in_checkout}): reinstall referral-net from its wheel"
    )
