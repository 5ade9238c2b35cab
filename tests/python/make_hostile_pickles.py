#!/usr/bin/env python3
"""Write pickles that run a command when Python's pickle loads them.

Usage: make_hostile_pickles.py OUT_DIR MARKER        write OUT_DIR/hostile-*.pkl
       make_hostile_pickles.py --run FILE            load FILE with plain pickle (unsafe!)

Each file, loaded by pickle.load, creates the file MARKER. editone must refuse all of
them and MARKER must not appear; --run proves the files really are hostile.
"""

import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path


class Call:
    """An object whose unpickling calls `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile(marker):
    """name -> object to pickle; every one creates `marker` when unpickled."""
    touch = f"touch '{marker}'"
    return {
        "os-system": Call(os.system, touch),
        "builtins-eval": Call(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess-popen": Call(subprocess.Popen, ["touch", str(marker)]),
        # Hidden where a loader looks for the network, beside real-looking entries.
        "inside-g-ema": {"G": None, "D": None, "G_ema": Call(os.system, touch), "training_set_kwargs": None},
        "exec": Call(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
    }


def main():
    if sys.argv[1] == "--run":
        with open(sys.argv[2], "rb") as f:
            pickle.load(f)  # deliberately unsafe: shows the file runs code
        return
    out, marker = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for name, obj in hostile(marker).items():
        for protocol in (2, 4):
            (out / f"hostile-{name}-p{protocol}.pkl").write_bytes(pickle.dumps(obj, protocol=protocol))


if __name__ == "__main__":
    main()
