"""The password hasher: Argon2id at OWASP's minimum, sized for a tenth of a CPU.

Django 5.2's default, PBKDF2-SHA256 at 1,000,000 iterations, costs 0.22 s of CPU per password
check on one core here: over two seconds of every log-in on the free instance's tenth of a CPU.
OWASP's Password Storage Cheat Sheet gives Argon2id with 19 MiB, 2 passes and 1 lane as a
minimum configuration of equal standing; it costs 22 ms of CPU per check here (docs/benchmarks.md,
"Password check"), and its 19 MiB are held only during a check. Django's own Argon2 hasher
(argon2-cffi) does the work; only its cost parameters differ, and they are written in each stored
hash, so a hash made with other parameters still verifies and is re-made on the next log-in.
"""
from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id, m=19 MiB, t=2, p=1 (OWASP's minimum). Same algorithm name as Django's, so stored
    Argon2 hashes of either are read by both; Django re-hashes those whose parameters differ."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
