"""Client on Python's websockets: `client.py URL [SUBPROTOCOLS]`.

Connects, prints {"event": "open", ...}, then sends, pings and closes as told on stdin, reporting
every message, pong and the close it sees as JSON lines (see peer.py).
"""
import sys

from peer import main

if __name__ == "__main__":
    sys.argv[1:1] = ["client"]
    main()
