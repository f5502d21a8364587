"""Echo server on Python's websockets: `echo_server.py PORT [MAX_SIZE]` (PORT 0 picks a free one).

Prints {"event": "ready", "port": N} once listening, echoes every message, and reports what it
sees as JSON lines; commands on stdin act on the current connection (see peer.py).
"""
import sys

from peer import main

if __name__ == "__main__":
    sys.argv[1:1] = ["server"]
    main()
