"""Regenerate every shipped workflow (run from the repo root: python tools/make_all.py).

Each tools/make_<name>.py builds one graph, lays it out from tools/node_sizes.json (tools/wfbuild.py)
and writes workflows/<name>.json. Thumbnails (workflows/<name>.jpg) come from the real frontend:
python tools/thumbnails.py; node sizes are re-measured with python tools/measure_nodes.py.
"""
import glob
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(names=()):
    for path in sorted(glob.glob(os.path.join(HERE, "make_*.py"))):
        name = os.path.basename(path)[len("make_"):-3]
        if name == "all" or (names and name not in names):
            continue
        print("workflows/%s.json" % name, flush=True)
        runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
