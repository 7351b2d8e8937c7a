"""The operating system's keyring (macOS Keychain, Windows Credential Locker, Secret Service), where there is one.

Used for the register's passphrase and the sync token. A machine without a
usable keyring (a headless server, a minimal desktop) simply has none: every
function then answers None or False and fieldkit uses its other ways.
"""

from __future__ import annotations

SERVICE = "fieldkit"


def _backend():
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        found = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring configuration is no keyring
        return None
    if isinstance(found, fail.Keyring) or type(found).__name__ in ("Keyring", "ChainerBackend") and not getattr(found, "backends", True):
        return None
    return found


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
