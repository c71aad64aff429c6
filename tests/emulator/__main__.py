"""`make emulator`: the tests' AWS emulator, standalone on 127.0.0.1, until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import threading

from . import Emulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=5000, help="TCP port on 127.0.0.1 (0: any free port)")
    port = parser.parse_args().port
    try:
        emulator = Emulator(port).start()
    except OSError as error:
        problem = f"emulator: cannot listen on 127.0.0.1:{port}: {error.strerror}; try PORT=<another port>"
        raise SystemExit(problem) from None
    print(f"AWS emulator (moto 5.2.5 + project extension) listening on {emulator.endpoint}")
    print("Point the AWS CLI, boto3 or taskcat at it:")
    for name, value in emulator.environment.items():
        print(f"  export {name}={value}")
    print("Ctrl-C stops it; everything it held is gone then.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
