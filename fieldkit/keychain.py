"""The operating system's keyring (macOS Keychain, Windows Credential Locker, Secret Service), where there is one.

Used for the register's passphrase and the sync token. A machine without a
usable keyring (a headless server, a minimal desktop) simply has none: every
function then answers None or False and fieldkit uses its other ways.
"""

from __future__ import annotations

import os

SERVICE = "fieldkit"


def _backend():
    """The keyring to use, or None.

    One configured explicitly (``PYTHON_KEYRING_BACKEND``, keyringrc) is used as
    configured; of those found on their own only an operating system's keyring
    (priority 1 or more by keyring's own measure): never a plain file that
    another package happens to offer, which would put secrets beside the data.
    """
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:
        return None
    try:
        found = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring configuration is no keyring
        return None
    if isinstance(found, fail.Keyring) or found.priority < 0:
        return None
    if os.environ.get("PYTHON_KEYRING_BACKEND") and not isinstance(found, chainer.ChainerBackend):
        return found
    candidates = found.backends if isinstance(found, chainer.ChainerBackend) else [found]
    return next((backend for backend in candidates if backend.priority >= 1), None)


def available() -> bool:
    return _backend() is not None


def get(name: str) -> str | None:
    backend = _backend()
    if backend is None:
        return None
    try:
        return backend.get_password(SERVICE, name)
    except Exception:  # noqa: BLE001 - a locked or absent keyring is no answer, not a failure
        return None


def put(name: str, secret: str) -> bool:
    """Keep ``secret`` in the keyring; False when there is none (the caller keeps it elsewhere)."""
    backend = _backend()
    if backend is None:
        return False
    try:
        backend.set_password(SERVICE, name, secret)
    except Exception:  # noqa: BLE001
        return False
    return True


def remove(name: str) -> None:
    backend = _backend()
    if backend is None:
        return
    try:
        backend.delete_password(SERVICE, name)
    except Exception:  # noqa: BLE001 - nothing there to remove
        pass
