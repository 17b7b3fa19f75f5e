"""A stand-in pod agent: starts a SIGTERM-ignoring worker, which starts a grandchild in its own
session, then sleeps. Writes the pids it created to the file named by argv[1]."""

import os
import signal
import subprocess
import sys
import time

WORKER = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
child = subprocess.Popen(sleeper, start_new_session=True)
with open(sys.argv[1], "a") as out:
    out.write(f"{os.getpid()} {child.pid}\\n")
time.sleep(600)
"""

if __name__ == "__main__":
    with open(sys.argv[1], "a") as out:
        out.write(f"{os.getpid()}\n")
    subprocess.Popen([sys.executable, "-c", WORKER, sys.argv[1]], start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(600)
