"""Service: the daemon and what it needs from the operating system.

`daemon` (the scheduler and its jobs), `watch` (folder scans), `state` (what
`status` reads), `system` (notify, the lock, logging, users).
"""
