"""Start a real ComfyUI server with this pack for the browser tools (measure_nodes, ui_check,
thumbnails). It reuses the project harness (``../shared/harness``, or ``$METAVSR_HARNESS_DIR``):
its ``run_workflow.Server`` starts ComfyUI from ``$COMFY_HARNESS/ComfyUI`` (CPU, 127.0.0.1, a fresh
work dir, only this pack whitelisted) and stops it by its PID. Nothing here installs ComfyUI; build
a harness tree with ``../shared/harness/build.sh`` first.

    with comfy_server("/tmp/comfy_harness158", port=8191) as srv:
        frontend_js(srv, "measure", "--out", "sizes.json")
"""
import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS_DIR = os.environ.get("METAVSR_HARNESS_DIR", os.path.join(ROOT, "..", "shared", "harness"))
FRONTEND_JS = os.path.join(ROOT, "tools", "frontend.js")
WORKFLOWS = os.path.join(ROOT, "workflows")


def _run_workflow_module(tree: str):
    """The harness's run_workflow module bound to the harness tree ``tree`` (it reads
    ``$COMFY_HARNESS`` when imported)."""
    os.environ["COMFY_HARNESS"] = tree
    os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache_harness")
    if HARNESS_DIR not in sys.path:
        sys.path.insert(0, HARNESS_DIR)
    if "run_workflow" in sys.modules:
        return importlib.reload(sys.modules["run_workflow"])
    return importlib.import_module("run_workflow")


def frontend_version(tree: str) -> str:
    import glob
    hits = glob.glob(os.path.join(tree, "venv", "lib", "python*", "site-packages",
                                  "comfyui_frontend_package-*.dist-info"))
    return os.path.basename(hits[0])[len("comfyui_frontend_package-"):-len(".dist-info")] if hits else "?"


@contextlib.contextmanager
def comfy_server(tree: str, port: int = 8188, node_name: str = "ComfyUI-MetaVSR", pack_dir: str = ROOT):
    """A running ComfyUI (harness tree ``tree``) with the pack ``pack_dir`` (this checkout) linked as
    ``custom_nodes/<node_name>`` and its example assets copied into the run's input/. Yields the
    harness Server (``.base`` URL, ``.work`` dir)."""
    rw = _run_workflow_module(tree)
    work = tempfile.mkdtemp(prefix="metavsr-ui-", dir=os.path.join(tree, "runs") if os.path.isdir(
        os.path.join(tree, "runs")) else None)
    for d in ("input", "output", "temp", "user/default"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    with open(os.path.join(work, "user", "default", "comfy.settings.json"), "w") as f:
        json.dump({"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}, f)
    rw.copy_example_assets(pack_dir, os.path.join(work, "input"))
    link = os.path.join(rw.COMFY, "custom_nodes", node_name)
    if os.path.islink(link):
        os.unlink(link)
    elif os.path.exists(link):
        raise RuntimeError("%s exists and is not a symlink" % link)
    os.symlink(pack_dir, link)
    srv = rw.Server(port, work, ["--disable-api-nodes", "--disable-all-custom-nodes",
                                 "--whitelist-custom-nodes", node_name], os.path.join(work, "server.log"))
    try:
        srv.start(240)
        srv.frontend = frontend_version(tree)
        yield srv
    finally:
        srv.stop()
        if os.path.islink(link):
            os.unlink(link)


def frontend_js(srv, mode: str, *args, timeout: float = 900, tree: str = None) -> dict:
    """Run ``tools/frontend.js MODE --url srv.base ARGS...`` and return the JSON it prints."""
    env = dict(os.environ)
    if tree:
        env["COMFY_HARNESS"] = tree
    cmd = ["node", FRONTEND_JS, mode, "--url", srv.base] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       timeout=timeout, env=env)
    out = p.stdout.decode("utf-8", "replace")
    try:
        return json.loads(out[out.index("{"):])
    except ValueError:
        raise RuntimeError("frontend.js %s failed (rc %d): %s %s" % (mode, p.returncode, out[-2000:],
                                                                   p.stderr.decode("utf-8", "replace")[-3000:]))


def shipped_workflows():
    return sorted(os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS) if f.endswith(".json"))


TREES = {"1.27.10": "/tmp/comfy_harness", "1.58.1": "/tmp/comfy_harness158"}


def tree_args(ap):
    ap.add_argument("--tree", action="append", default=None,
                    help="harness tree(s) ($COMFY_HARNESS); default /tmp/comfy_harness (frontend 1.27.10) "
                         "and /tmp/comfy_harness158 (1.58.1) where present")
    ap.add_argument("--port", type=int, default=8291)


def trees_of(a):
    return a.tree or [t for t in TREES.values() if os.path.isdir(os.path.join(t, "ComfyUI"))]
