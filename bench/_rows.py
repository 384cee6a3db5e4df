"""What the benches that measure one configuration per subprocess share (peak RSS is per process):
the device fallback, the child's JSON row, and running a child with the parent's arguments."""
import json
import subprocess
import sys


def resolve_device(args) -> None:
    """``args.device`` cuda -> cpu when no GPU; a CPU runs fp32."""
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        args.device = "cpu"
    if args.device == "cpu":
        args.dtype = "fp32"


def child(args, one) -> bool:
    """In a child (``args.n`` set): print ``one(args)`` as the JSON row and return True."""
    if not args.n:
        return False
    print(json.dumps(one(args)))
    return True


def run_child(script: str, args, **override) -> dict:
    """Run ``script`` with the parent's arguments (``vars(args)``, list values dropped, ``override`` on
    top) and return its JSON row; a failing child ends the bench with its stderr."""
    opts = {k: v for k, v in vars(args).items() if not isinstance(v, list)}
    opts.update(override)
    cmd = [sys.executable, script]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        print(res.stderr[-3000:])
        raise SystemExit(res.returncode)
    return json.loads(res.stdout.strip().splitlines()[-1])
