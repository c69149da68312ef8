"""Recorded histories of concurrent clients, and a checker that finds stale reads in them.

``workload`` drives a running server and records every operation (``history``); ``checker`` decides,
without I/O, whether any read saw a state older than an acknowledged write (or newer than any begun
write, or older than one its client had already seen); ``report`` prints the table. ``rerum verify``
ties them together. How the checker decides: ``docs/verify.md``.
"""
