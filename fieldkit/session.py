"""An unlocked session: the register's key kept for this login in the kernel's memory, never on disk.

As ``sudo`` remembers a password for a while, or ``ssh-agent`` holds a key for a
login, ``fieldkit unlock`` (or a passphrase typed at a command's prompt, or in
the app) keeps the register's unwrapped data key so the next commands need no
passphrase and no 0.2 s of key derivation, until ``fieldkit lock``, the expiry
(8 hours unless told otherwise) or power-off (and the end of the login, where
the system gives each login a session keyring of its own, as pam_keyinit does).

The key is kept in the Linux kernel's session keyring (``keyctl``): kernel
memory, never written to a file or to swap, shared only by the processes of
this login, and removed by the kernel itself when it expires. It is filed
under the register folder's full path, so a copy of the folder elsewhere is
not unlocked by it, and it is checked against the folder's key file before
use. Where there is no kernel keyring (macOS, Windows, a container that
forbids it) there are no sessions; the OS keyring (``fieldkit encrypt
--remember``) or ``FIELDKIT_PASSPHRASE`` serve instead.

No library is needed: the two system calls go through the C library (ctypes).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

KEY_BYTES = 32

#: System call numbers of add_key and keyctl on the machines fieldkit runs on.
_SYSCALLS = {
    "x86_64": (248, 250), "amd64": (248, 250), "aarch64": (217, 219), "arm64": (217, 219), "riscv64": (217, 219),
    "i386": (286, 288), "i686": (286, 288), "armv7l": (309, 311), "ppc64le": (269, 271), "s390x": (278, 280),
}
_SESSION_KEYRING = -3
_KEYCTL_GET_KEYRING_ID = 0
_KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYCTL_SEARCH = 10
_KEYCTL_READ = 11
_KEYCTL_SET_TIMEOUT = 15
_KEYCTL_INVALIDATE = 21
_KEYCTL_UNLINK = 9


class _Keyctl:
    """The two system calls, or None where the kernel has no keyring for us."""

    def __init__(self) -> None:
        numbers = _SYSCALLS.get(os.uname().machine.lower()) if sys.platform.startswith("linux") else None
        if numbers is None:
            raise OSError("no kernel keyring on this system")
        self.add_key_nr, self.keyctl_nr = numbers
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def call(self, *args: object) -> int:
        result = self.libc.syscall(*args)
        if result == -1:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        return result

    def keyctl(self, command: int, *args: object) -> int:
        return self.call(ctypes.c_long(self.keyctl_nr), ctypes.c_long(command), *args)


_kernel: _Keyctl | None | bool = False  # False: not tried yet


def _keyctl() -> _Keyctl | None:
    global _kernel
    if _kernel is False:
        try:
            _kernel = _Keyctl()
        except OSError:
            _kernel = None
    return _kernel  # type: ignore[return-value]


def _name(home: Path) -> bytes:
    return f"fieldkit register key:{Path(home).resolve()}".encode("utf-8", "surrogateescape")


def _find(kernel: _Keyctl, home: Path) -> int | None:
    try:
        return kernel.keyctl(_KEYCTL_SEARCH, ctypes.c_long(_SESSION_KEYRING), b"user", _name(home), ctypes.c_long(0))
    except OSError:  # none, expired, revoked, or no keyring: all mean "not unlocked"
        return None


def _session_keyring(kernel: _Keyctl) -> int | None:
    """The serial number of this login's session keyring, or None.

    Asked without "create", and used by number: a process started outside any
    login session then shares the user's session keyring with its siblings,
    where "create" (what add_key does given the keyring's special name) would
    give it a keyring of its own that ends with it.
    """
    try:
        return kernel.keyctl(_KEYCTL_GET_KEYRING_ID, ctypes.c_long(_SESSION_KEYRING), ctypes.c_long(0))
    except OSError:
        return None


def available() -> bool:
    """Whether this login can keep an unlocked session."""
    kernel = _keyctl()
    return kernel is not None and _session_keyring(kernel) is not None


def keep(home: Path, data_key: bytes, seconds: int) -> bool:
    """Keep the register's key for this login for ``seconds``; False when this system cannot."""
    kernel = _keyctl()
    keyring = _session_keyring(kernel) if kernel is not None else None
    if kernel is None or keyring is None or len(data_key) != KEY_BYTES or seconds <= 0:
        return False
    try:
        serial = kernel.call(ctypes.c_long(kernel.add_key_nr), b"user", _name(home), data_key,
                             ctypes.c_size_t(len(data_key)), ctypes.c_long(keyring))
        kernel.keyctl(_KEYCTL_SET_TIMEOUT, ctypes.c_long(serial), ctypes.c_long(int(seconds)))
    except OSError:
        return False
    return True


def kept(home: Path) -> bytes | None:
    """The register's key when this login unlocked it and the session has not ended, else None."""
    kernel = _keyctl()
    if kernel is None:
        return None
    serial = _find(kernel, home)
    if serial is None:
        return None
    buffer = ctypes.create_string_buffer(KEY_BYTES)
    try:
        size = kernel.keyctl(_KEYCTL_READ, ctypes.c_long(serial), buffer, ctypes.c_long(KEY_BYTES))
    except OSError:
        return None
    found = buffer.raw[:size] if size == KEY_BYTES else None
    ctypes.memset(buffer, 0, KEY_BYTES)
    return found


def end(home: Path) -> bool:
    """End this login's session for the register in ``home``; True when there was one."""
    kernel = _keyctl()
    if kernel is None:
        return False
    ended = False
    for _ in range(8):  # one a keyring, should more than one this login searches hold it
        serial = _find(kernel, home)
        if serial is None:
            break
        try:
            kernel.keyctl(_KEYCTL_INVALIDATE, ctypes.c_long(serial))
        except OSError:
            try:
                kernel.keyctl(_KEYCTL_UNLINK, ctypes.c_long(serial), ctypes.c_long(_session_keyring(kernel) or 0))
            except OSError:
                return ended
        ended = True
    return ended


def new_login() -> bool:
    """Give this process (and the processes it starts) a session keyring of their own, as a new login has.

    Tests and benchmarks use it so their sessions never mix with the person's.
    """
    kernel = _keyctl()
    if kernel is None:
        return False
    try:
        kernel.keyctl(_KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_char_p(None))
    except OSError:
        return False
    return True
