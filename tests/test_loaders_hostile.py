"""Hostile inputs for every weight loader: the CogVideoX folder loader (``models.receivers.cogvideox.loading``: ``load``,
``check_folder`` and the node), the embedded receiver (``load_embedded``, ``read_metadata``, the node) and
the metric weight loader (``features.load_weights``, the Metrics node).

Seeded sets of broken inputs (truncated and bit-flipped safetensors, random bytes under a weight name,
broken or odd JSON, absurd configs, wrong shapes, missing / extra / non-float tensors, empty and partial
folders, directories where files belong) run in subprocesses under ``RLIMIT_AS`` and a timeout. Each
case ends as: *loaded* (a valid input, or damage no loader can see, such as a flipped bit inside tensor
data), *clean* (the loader's own ValueError subclass, or the node's MetaVSRInputError, with the offending
file named in the message) or *other* (anything else: a raw library error, an out-of-memory, a crash, a
broken input that loaded, a valid one that was refused). Every loader must have zero *other*; the
counts are printed (``pytest -s``).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import cogvideox_fixtures as configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_AS = 4 << 30    # address-space limit of each loader subprocess
TIMEOUT_S = 300
CASE_S = 30           # no single case may take longer (a bogus file must not make a loader work hard)
MAX_RSS_MB = 2500     # peak resident memory of a subprocess (imports alone take about 500 MB)
SEED = 20240611

# Runs in the subprocess: every case of one list, outcomes to a JSON file. Written so that it also runs
# against older versions of the loaders (error classes that do not exist there match nothing).
DRIVER = textwrap.dedent(r'''
    import json, os, resource, sys, time, warnings
    root, cases_file, out_file, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path[:0] = [root]
    warnings.simplefilter("ignore")
    import logging
    logging.disable(logging.CRITICAL)
    from _pack import load_pack
    load_pack("metavsr")
    import torch
    torch.set_num_threads(1)
    from metavsr.nodes._check import MetaVSRInputError
    if any(c["loader"].startswith("metasr") for c in json.load(open(cases_file))):
        import diffusers  # imported before the first case, so that no case is timed with the import
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel

    class _Never(Exception):
        pass

    def cls(module, name):
        return getattr(module, name, _Never)

    def run_case(c):
        kind, path = c["loader"], c["path"]
        if kind in ("metasr_load", "metasr_check", "metasr_node"):
            from metavsr.models.receivers.cogvideox import loading
            err = loading.MetaSRModelError
            if kind == "metasr_load":
                pipe = loading.load(path, dtype="fp32", device="cpu")
                return err, {"kinds": list(pipe.metadata_kinds)}
            if kind == "metasr_check":
                loading.check_folder(path)
                return err, {}
            from metavsr.nodes.receiver_cogvideox import MetaVSRLoadCogVideoXSR
            os.environ["METAVSR_MODELS"] = os.path.dirname(os.path.dirname(path))
            (m,) = MetaVSRLoadCogVideoXSR().load(os.path.basename(path), dtype="fp32", offload="none",
                                                 tile_size=0, tile_overlap=0, chunk_frames=0, chunk_overlap=0)
            return MetaVSRInputError, {"kinds": list(m.metadata_kinds)}
        if kind in ("tiny", "tiny_read", "tiny_node"):
            from metavsr.models.receivers.tiny import receiver as tiny
            err = cls(tiny, "TinyWeightsError")
            if kind == "tiny":
                tiny.load_embedded(path)
            elif kind == "tiny_read":
                tiny.read_metadata(path)
            else:
                from metavsr.nodes.receiver_tiny import MetaVSRLoadEmbeddedReceiver
                tiny.WEIGHTS_DIR = os.path.dirname(path)
                MetaVSRLoadEmbeddedReceiver().load(os.path.basename(path), "cpu", 64)
                err = MetaVSRInputError
            return err, {}
        if kind in ("metric", "metric_node"):
            from metavsr.models.metrics import features as fe
            if kind == "metric":
                fe.load_weights(path, torch.device("cpu"))
                return cls(fe, "WeightFileError"), {}
            from metavsr.nodes.evaluate import MetaVSRMetrics
            fe.WEIGHTS_DIR = os.path.dirname(path)
            x = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(0))
            MetaVSRMetrics().run(x, x.flip(1), lpips_net="alex")
            return MetaVSRInputError, {}
        raise AssertionError(kind)

    expected_err = {"metasr_load": "MetaSRModelError", "metasr_check": "MetaSRModelError",
                    "metasr_node": "MetaVSRInputError", "tiny": "TinyWeightsError",
                    "tiny_read": "TinyWeightsError", "tiny_node": "MetaVSRInputError",
                    "metric": "WeightFileError", "metric_node": "MetaVSRInputError"}
    results = []
    for c in json.load(open(cases_file)):
        t0 = time.time()
        r = {"id": c["id"], "loader": c["loader"]}
        try:
            _, info = run_case(c)
            r.update(outcome="loaded", info=info)
        except BaseException as e:  # noqa: B036 - classify everything, including crashes of the loader
            msg = str(e)
            ok_cls = type(e).__name__ == expected_err[c["loader"]] or any(
                k.__name__ == expected_err[c["loader"]] for k in type(e).__mro__)
            prefix = c.get("prefix", "")
            named = c["names"] in msg and msg.startswith(prefix)
            r.update(outcome="clean" if ok_cls and named else "other",
                     error=f"{type(e).__module__}.{type(e).__name__}: {msg[:400]}")
        r["seconds"] = round(time.time() - t0, 3)
        results.append(r)
    try:  # VmHWM is this process's own peak (ru_maxrss can carry the parent's peak across exec)
        rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    json.dump({"results": results, "max_rss_mb": rss}, open(out_file, "w"))
''')


# ---- building the cases ---------------------------------------------------------------------------
def _st(path):
    """state dict and metadata of a safetensors file."""
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _data_start(path):
    with open(path, "rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def _canonical(path):
    """Rewrite a safetensors header with sorted keys (same length, padded with spaces as the format
    allows): the library orders metadata entries arbitrarily, and seeded bit flips need fixed bytes."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    text = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    assert len(text) <= n
    open(path, "wb").write(raw[:8] + text.ljust(n) + raw[8 + n:])


def _truncations(rng, path, n):
    size, hdr = os.path.getsize(path), _data_start(path)
    cuts = [0, rng.randrange(1, 8), rng.randrange(8, hdr), hdr, rng.randrange(hdr, size), size - 1]
    return cuts[:n] if n < len(cuts) else cuts + [rng.randrange(1, size) for _ in range(n - len(cuts))]


def _flip(src, dst, pos):
    b = bytearray(open(src, "rb").read())
    b[pos] ^= 1 << (pos % 8)
    open(dst, "wb").write(bytes(b))


class Cases:
    """Collects ``(id, loader, path, names, expect)``; ``expect`` is "ok", "error" or "either"."""

    def __init__(self, root):
        self.root, self.items = root, []

    def add(self, cid, loader, path, names="", expect="error", **kw):
        self.items.append(dict(id=cid, loader=loader, path=str(path), names=names, expect=expect, **kw))

    def dir(self, *parts):
        d = os.path.join(self.root, *parts)
        os.makedirs(d, exist_ok=True)
        return d


def _cogvideox_cases(tmp):
    rng = random.Random(SEED)
    base = configs.tiny_folder(str(tmp / "base"), "tiny_2b", seed=0)
    models = tmp / "models" / "diffusers"
    cases = Cases(str(models))
    T, V = "transformer", "vae"
    TW, VW = f"{T}/diffusion_pytorch_model.safetensors", f"{V}/diffusion_pytorch_model.safetensors"
    n = [0]

    def folder(cid, mutate=None, names="", expect="error", node=False, check=False, **kw):
        n[0] += 1
        d = str(models / f"{n[0]:03d}_{cid}")
        shutil.copytree(base, d)
        if mutate is not None:
            mutate(d)
        cases.add(cid, "metasr_load", d, names, expect, **kw)
        if check:
            cases.add(cid + "/check_folder", "metasr_check", d, names, expect)
        if node:
            cases.add(cid + "/node", "metasr_node", d, names, expect, prefix="model: ")
        return d

    def write(rel, data):
        def m(d):
            p = os.path.join(d, rel)
            if os.path.isdir(p):
                shutil.rmtree(p)
            with open(p, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
        return m

    def make_dir(rel):
        def m(d):
            p = os.path.join(d, rel)
            os.remove(p)
            os.makedirs(os.path.join(p, "inside"))
        return m

    def edit_json(rel, **changes):
        def m(d):
            p = os.path.join(d, rel)
            cfg = json.load(open(p))
            cfg.update(changes)
            json.dump(cfg, open(p, "w"))
        return m

    def edit_state(rel, fn):
        def m(d):
            p = os.path.join(d, rel)
            sd, meta = _st(p)
            fn(sd)
            save_file(sd, p, metadata=meta)
        return m

    # valid inputs
    folder("valid", expect="ok", node=True, check=True, kinds=[])
    folder("valid_metasr_edges", write("metasr.json", '{"metadata_kinds": ["edges"], "_comment": "x"}'),
           expect="ok", node=True, kinds=["edges"])
    folder("valid_metasr_none", write("metasr.json", '{"metadata_kinds": []}'), expect="ok", kinds=[])

    def shard(d):
        p = os.path.join(d, TW)
        sd, _ = _st(p)
        keys = sorted(sd)
        half = len(keys) // 2
        wm = {}
        for i, part in enumerate((keys[:half], keys[half:])):
            name = f"diffusion_pytorch_model-0000{i + 1}-of-00002.safetensors"
            save_file({k: sd[k] for k in part}, os.path.join(d, T, name))
            wm.update({k: name for k in part})
        os.remove(p)
        json.dump({"metadata": {}, "weight_map": wm},
                  open(os.path.join(d, T, "diffusion_pytorch_model.safetensors.index.json"), "w"))
    sharded = folder("valid_sharded", shard, expect="ok", kinds=[])

    def to_bin(d):
        p = os.path.join(d, VW)
        sd, _ = _st(p)
        torch.save(sd, os.path.join(d, V, "diffusion_pytorch_model.bin"))
        os.remove(p)
    folder("valid_bin_vae", to_bin, expect="ok", kinds=[])

    # folders that are empty, partial, or have directories / files in the wrong places
    def only(*keep):
        def m(d):
            for x in os.listdir(d):
                if x not in keep:
                    p = os.path.join(d, x)
                    shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        return m
    folder("empty_folder", only(), names=f"{T}/config.json", node=True, check=True)
    folder("only_transformer", only(T), names="vae/config.json", check=True)
    folder("no_scheduler", only(T, V), names="scheduler/scheduler_config.json")
    folder("no_vae_weights", lambda d: os.remove(os.path.join(d, VW)), names=VW)

    def rename_weights(d):
        os.rename(os.path.join(d, TW), os.path.join(d, T, "model.safetensors"))
    folder("weights_under_another_name", rename_weights, names=TW)

    def transformer_is_file(d):
        shutil.rmtree(os.path.join(d, T))
        open(os.path.join(d, T), "w").write("x")
    folder("transformer_is_a_file", transformer_is_file, names=f"{T}/config.json")
    for rel in (f"{T}/config.json", "scheduler/scheduler_config.json", TW, VW):
        folder(f"dir_instead_of_{rel.replace('/', '_')}", make_dir(rel), names=rel, check=rel.endswith(".json"))

    # broken and odd JSON in every config
    for rel in (f"{T}/config.json", f"{V}/config.json", "scheduler/scheduler_config.json"):
        text = open(os.path.join(base, rel)).read()
        tag = rel.split("/")[0]
        cut = rng.randrange(1, len(text) - 1)
        folder(f"{tag}_config_truncated@{cut}", write(rel, text[:cut]), names=rel, check=True)
        folder(f"{tag}_config_empty", write(rel, b""), names=rel)
        folder(f"{tag}_config_random_bytes", write(rel, rng.randbytes(300)), names=rel)
        folder(f"{tag}_config_list", write(rel, "[1, 2, 3]"), names=rel)
        folder(f"{tag}_config_deep", write(rel, "[" * 100000 + "]" * 100000), names=rel)
    folder("transformer_config_string", write(f"{T}/config.json", '"CogVideoXTransformer3DModel"'),
           names=f"{T}/config.json", node=True)

    # configs that declare absurd or mismatched models for tiny weight files
    tcfg, vcfg, scfg = f"{T}/config.json", f"{V}/config.json", "scheduler/scheduler_config.json"
    for cid, rel, ch in [
            ("num_layers_1e6", tcfg, dict(num_layers=10 ** 6)),
            ("num_layers_1000", tcfg, dict(num_layers=1000)),
            ("head_dim_1e6", tcfg, dict(attention_head_dim=10 ** 6)),
            ("hidden_1e6", tcfg, dict(num_attention_heads=1000, attention_head_dim=1000)),
            ("num_layers_string", tcfg, dict(num_layers="2")),
            ("num_layers_float", tcfg, dict(num_layers=2.5)),
            ("num_layers_negative", tcfg, dict(num_layers=-1)),
            ("num_layers_null", tcfg, dict(num_layers=None)),
            ("sample_size_huge", tcfg, dict(sample_height=16000, sample_width=16000)),
            ("text_len_huge", tcfg, dict(max_text_seq_length=10 ** 9)),
            ("num_layers_3_for_2", tcfg, dict(num_layers=3)),
            ("heads_4_for_2", tcfg, dict(num_attention_heads=4)),
            ("not_cogvideox", tcfg, dict(_class_name="UNet2DConditionModel")),
            ("learned_positions", tcfg, dict(use_learned_positional_embeddings=True)),
            ("vae_channels_4096", vcfg, dict(block_out_channels=[4096] * 4)),
            ("vae_layers_1000", vcfg, dict(layers_per_block=1000)),
            ("vae_bad_groups", vcfg, dict(norm_num_groups=3)),
            ("vae_channels_string", vcfg, dict(block_out_channels="8888")),
            ("vae_scaling_zero", vcfg, dict(scaling_factor=0)),
            ("vae_wrong_class", vcfg, dict(_class_name="AutoencoderKL")),
            ("scheduler_steps_1e12", scfg, dict(num_train_timesteps=10 ** 12)),
            ("scheduler_bad_schedule", scfg, dict(beta_schedule="bogus")),
            ("scheduler_bad_type", scfg, dict(beta_start="x"))]:
        folder(cid, edit_json(rel, **ch), names=rel, node=cid in ("num_layers_1e6", "heads_4_for_2"))

    # damaged weight files: truncated, bit-flipped, random, empty, LFS pointer, non-checkpoint .bin
    for rel, nt, nf in ((TW, 6, 8), (VW, 4, 4)):
        src = os.path.join(base, rel)
        tag = rel.split("/")[0]
        for cut in _truncations(rng, src, nt):
            folder(f"{tag}_weights_truncated@{cut}",
                   write(rel, open(src, "rb").read()[:cut]), names=rel, check=tag == T and cut < 8)
        hdr, size = _data_start(src), os.path.getsize(src)
        for i in range(nf):  # half in the header, half in the tensor data
            pos = rng.randrange(0, hdr) if i % 2 == 0 else rng.randrange(hdr, size)
            folder(f"{tag}_weights_bitflip@{pos}",
                   lambda d, rel=rel, pos=pos: _flip(os.path.join(base, rel), os.path.join(d, rel), pos),
                   names=rel, expect="either")
        folder(f"{tag}_weights_random_same_size", write(rel, rng.randbytes(size)), names=rel)
    folder("weights_random_100_bytes", write(TW, rng.randbytes(100)), names=TW, node=True, check=True)
    folder("weights_zero_bytes", write(TW, b""), names=TW, node=True)
    folder("weights_lfs_pointer", write(TW, "version https://git-lfs.github.com/spec/v1\noid sha256:"
                                            + "0" * 64 + "\nsize 174080\n"), names=TW)

    def bin_vae(content):
        def m(d):
            os.remove(os.path.join(d, VW))
            p = os.path.join(d, V, "diffusion_pytorch_model.bin")
            if isinstance(content, bytes):
                open(p, "wb").write(content)
            else:
                torch.save(content, p)
        return m
    vbin = f"{V}/diffusion_pytorch_model.bin"
    folder("bin_random_bytes", bin_vae(rng.randbytes(5000)), names=vbin)
    folder("bin_a_list", bin_vae([1, 2, 3]), names=vbin)
    folder("bin_tensor_dict_of_other_model", bin_vae({"w": torch.zeros(3)}), names=vbin)

    def bin_truncated(d):
        bin_vae(_st(os.path.join(base, VW))[0])(d)
        p = os.path.join(d, vbin)
        b = open(p, "rb").read()
        open(p, "wb").write(b[: len(b) // 2])
    folder("bin_truncated", bin_truncated, names=vbin)

    # strict weights: missing / extra / mis-shaped / non-float tensors
    def drop(k):
        return lambda sd: sd.pop(k)
    keys = sorted(_st(os.path.join(base, TW))[0])
    for i, k in enumerate(rng.sample(keys, 3)):
        folder(f"missing_tensor_{k}", edit_state(TW, drop(k)), names=TW, node=i == 0)
    folder("missing_vae_tensor", edit_state(VW, lambda sd: sd.pop(sorted(sd)[0])), names=VW)
    folder("extra_tensor", edit_state(TW, lambda sd: sd.update(extra=torch.zeros(2))), names=TW)
    k = rng.choice([k for k in keys if k.endswith("weight")])

    def reshape(sd, k=k):
        sd[k] = torch.zeros(*[s + 1 for s in sd[k].shape])
    folder(f"wrong_shape_{k}", edit_state(TW, reshape), names=TW)
    folder("int_tensor", edit_state(TW, lambda sd, k=k: sd.update({k: sd[k].long()})), names=TW)

    # sharded folders
    idx = f"{T}/diffusion_pytorch_model.safetensors.index.json"

    def sharded_folder(cid, mutate, names, expect="error"):
        n[0] += 1
        d = str(models / f"{n[0]:03d}_{cid}")
        shutil.copytree(sharded, d)
        mutate(d)
        cases.add(cid, "metasr_load", d, names, expect)
    sharded_folder("index_bad_json", write(idx, '{"weight_map": {'), idx)
    sharded_folder("index_no_weight_map", write(idx, '{"metadata": {}}'), idx)
    shard1 = f"{T}/diffusion_pytorch_model-00001-of-00002.safetensors"
    sharded_folder("index_shard_missing", lambda d: os.remove(os.path.join(d, shard1)), shard1.split("/")[1])

    def escape(d):
        p = os.path.join(d, idx)
        j = json.load(open(p))
        j["weight_map"] = {k: "../../../x.safetensors" for k in j["weight_map"]}
        json.dump(j, open(p, "w"))
    sharded_folder("index_path_escape", escape, idx)
    sharded_folder("shard_truncated", write(shard1, rng.randbytes(50)), shard1)
    sharded_folder("shard_lacks_indexed_tensor", edit_state(shard1, lambda sd: sd.pop(sorted(sd)[0])), shard1)

    # metasr.json
    for cid, text in [("kinds_string", '{"metadata_kinds": "edges"}'),
                      ("kinds_duplicate", '{"metadata_kinds": ["edges", "edges"]}'),
                      ("kinds_unknown", '{"metadata_kinds": ["colour"]}'),
                      ("kinds_numbers", '{"metadata_kinds": [1]}'),
                      ("kinds_null", '{"metadata_kinds": null}'),
                      ("kinds_misspelt_key", '{"metadata_kind": ["edges"]}'),
                      ("metasr_not_object", '["edges"]'),
                      ("metasr_invalid_json", '{"metadata_kinds": ["edges"'),
                      ("metasr_random_bytes", rng.randbytes(64))]:
        folder(cid, write("metasr.json", text), names="metasr.json", node=cid == "kinds_string",
               check=cid == "kinds_string")

    def metasr_dir(d):
        os.makedirs(os.path.join(d, "metasr.json"))
    folder("metasr_is_a_directory", metasr_dir, names="metasr.json")

    # the prompt embedding file(s) and stray safetensors files next to them
    pe = "prompt_embedding.safetensors"
    folder("prompt_embedding_truncated", write(pe, open(os.path.join(base, pe), "rb").read()[:200]), names=pe)
    folder("prompt_embedding_random", write(pe, rng.randbytes(7320)), names=pe)
    folder("stray_zero_byte_safetensors", write("zz_partial.safetensors", b""), names="zz_partial.safetensors")
    folder("prompt_embedding_wrong_width",
           edit_state(pe, lambda sd: sd.update(prompt_embedding=torch.zeros(1, 226, 5))), names=pe)
    folder("prompt_embedding_int",
           edit_state(pe, lambda sd: sd.update(prompt_embedding=torch.zeros(1, 226, 8, dtype=torch.int32))),
           names=pe)
    folder("prompt_embedding_nan",
           edit_state(pe, lambda sd: sd.update(prompt_embedding=torch.full((1, 226, 8), float("nan")))), names=pe)
    return cases.items


def _tiny_cases(tmp):
    from metavsr.models.receivers.tiny.net import TinyConfig, TinySRNet
    from metavsr.models.receivers.tiny.receiver import DEFAULT_WEIGHTS
    rng = random.Random(SEED + 1)
    cases = Cases(str(tmp / "tiny"))
    cfg = TinyConfig(channels=8, blocks=1)
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in TinySRNet(cfg).state_dict().items()}
    meta = {"config": json.dumps(cfg.to_dict()), "training": json.dumps({"iterations": 1})}
    n = [0]

    def file(cid, content=None, metadata=meta, expect="error", names=None, node=False, read=False, name="w"):
        n[0] += 1
        d = cases.dir(f"{n[0]:03d}_{cid}")
        p = os.path.join(d, f"{name}.safetensors")
        if content is None:
            pass  # the file is absent
        elif isinstance(content, bytes):
            open(p, "wb").write(content)
        elif content == "dir":
            os.makedirs(os.path.join(p, "inside"))
        else:
            save_file(content, p, metadata=metadata)
        names = p if names is None else names
        cases.add(cid, "tiny", p, names, expect)
        if read:
            cases.add(cid + "/read_metadata", "tiny_read", p, names, "ok" if expect == "ok" else "either")
        if node:
            cases.add(cid + "/node", "tiny_node", p, names, expect, prefix="weights: ")
        return p

    good = file("valid_small", sd, expect="ok", node=True, read=True)
    _canonical(good)
    shutil.copy(DEFAULT_WEIGHTS, cases.dir("shipped"))
    cases.add("valid_shipped_copy", "tiny", os.path.join(cases.root, "shipped", os.path.basename(DEFAULT_WEIGHTS)),
              "", "ok")
    raw = open(good, "rb").read()
    hdr = _data_start(good)
    for cut in _truncations(rng, good, 8):
        file(f"truncated@{cut}", raw[:cut], node=cut == 0, read=cut < hdr)
    for i in range(8):
        pos = rng.randrange(0, hdr) if i % 2 == 0 else rng.randrange(hdr, len(raw))
        b = bytearray(raw)
        b[pos] ^= 1 << (pos % 8)
        file(f"bitflip@{pos}", bytes(b), expect="either")
    file("random_same_size", rng.randbytes(len(raw)), node=True)
    file("random_100_bytes", rng.randbytes(100), read=True)
    file("lfs_pointer", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n")
    file("directory", "dir", node=True)
    file("absent", None)
    for cid, m in [("config_bad_json", {**meta, "config": '{"channels": 8,'}),
                   ("training_bad_json", {**meta, "training": "{oops"}),
                   ("config_is_list", {**meta, "config": "[8, 1]"}),
                   ("config_unknown_field", {**meta, "config": json.dumps({**cfg.to_dict(), "width": 3})}),
                   ("config_channels_1e6", {**meta, "config": json.dumps({**cfg.to_dict(), "channels": 10 ** 6})}),
                   ("config_blocks_1e6", {**meta, "config": json.dumps({**cfg.to_dict(), "blocks": 10 ** 6})}),
                   ("config_scale_string", {**meta, "config": json.dumps({**cfg.to_dict(), "scale": "4"})}),
                   ("config_blocks_2_for_1", {**meta, "config": json.dumps({**cfg.to_dict(), "blocks": 2})}),
                   ("config_absent", {"training": meta["training"]}),
                   ("training_not_object", {**meta, "training": "[1]"})]:
        file(cid, sd, metadata=m, node=cid == "config_bad_json", read=cid.endswith("bad_json"))
    keys = sorted(sd)
    for i, k in enumerate(rng.sample(keys, 2)):
        file(f"missing_{k}", {kk: v for kk, v in sd.items() if kk != k}, node=i == 0)
    file("extra_tensor", {**sd, "extra.weight": torch.zeros(3)})
    file("wrong_shape", {**sd, "head.weight": torch.zeros(8, 21, 5, 5)})
    file("int_tensor", {**sd, "head.bias": torch.zeros(8, dtype=torch.int64)})
    file("nan_tensor", {**sd, "tail.bias": torch.full((48,), float("nan"))})
    file("empty_state", {"x": torch.zeros(1)})
    return cases.items


def _metric_cases(tmp):
    from metavsr.models.metrics import features as fe
    rng = random.Random(SEED + 2)
    cases = Cases(str(tmp / "metric"))
    alex_src = os.path.join(fe.WEIGHTS_DIR, fe.ALEX_FILE)
    dists_src = os.path.join(fe.WEIGHTS_DIR, fe.DISTS_FILE)
    alex, _ = _st(alex_src)
    n = [0]

    def file(cid, name, content, expect="error", node=False):
        n[0] += 1
        d = cases.dir(f"{n[0]:03d}_{cid}")
        p = os.path.join(d, name)
        if isinstance(content, bytes):
            open(p, "wb").write(content)
        elif content == "dir":
            os.makedirs(os.path.join(p, "inside"))
        elif isinstance(content, str):
            shutil.copy(content, p)
        else:
            save_file(content, p)
        cases.add(cid, "metric", p, p, expect)
        if node and name == fe.ALEX_FILE:
            cases.add(cid + "/node", "metric_node", p, p, expect, prefix="lpips_net=alex: ")
        return p

    file("valid_alex", fe.ALEX_FILE, alex_src, expect="ok", node=True)
    file("valid_dists", fe.DISTS_FILE, dists_src, expect="ok")
    for src, name, nt, nf in ((dists_src, fe.DISTS_FILE, 6, 6), (alex_src, fe.ALEX_FILE, 3, 2)):
        raw = open(src, "rb").read()
        hdr = _data_start(src)
        for cut in _truncations(rng, src, nt):
            file(f"{name}_truncated@{cut}", name, raw[:cut], node=cut == 0)
        for i in range(nf):
            pos = rng.randrange(0, hdr) if i % 2 == 0 else rng.randrange(hdr, len(raw))
            b = bytearray(raw)
            b[pos] ^= 1 << (pos % 8)
            file(f"{name}_bitflip@{pos}", name, bytes(b), expect="either")
    file("alex_random_bytes", fe.ALEX_FILE, rng.randbytes(4096), node=True)
    file("vgg_random_bytes", fe.VGG_FILE, rng.randbytes(100))
    file("vgg_zero_bytes", fe.VGG_FILE, b"")
    file("vgg_is_alex", fe.VGG_FILE, alex_src)
    file("vgg_directory", fe.VGG_FILE, "dir")
    file("alex_directory", fe.ALEX_FILE, "dir", node=True)
    file("alex_missing_lin4", fe.ALEX_FILE, {k: v for k, v in alex.items() if k != "lin.4.weight"}, node=True)
    file("alex_extra_tensor", fe.ALEX_FILE, {**alex, "lin.5.weight": torch.zeros(1, 8, 1, 1)})
    file("alex_wrong_shape", fe.ALEX_FILE, {**alex, "features.0.weight": torch.zeros(64, 3, 5, 5)})
    file("dists_wrong_length", fe.DISTS_FILE, {"alpha": torch.zeros(10), "beta": torch.zeros(10)})
    file("dists_nan", fe.DISTS_FILE, {"alpha": torch.full((1475,), float("nan")), "beta": torch.zeros(1475)})
    file("dists_int", fe.DISTS_FILE, {"alpha": torch.zeros(1475, dtype=torch.int32), "beta": torch.zeros(1475)})
    return cases.items


# ---- running them ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    groups = {"cogvideox": _cogvideox_cases(tmp), "tiny+metric": _tiny_cases(tmp) + _metric_cases(tmp)}
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("METAVSR_MODELS", None)
    procs = {}
    for name, cases in groups.items():  # the two groups run side by side (2 cores)
        cf, of = tmp / f"{name}.cases.json", tmp / f"{name}.out.json"
        cf.write_text(json.dumps(cases))
        procs[name] = (subprocess.Popen([sys.executable, str(driver), ROOT, str(cf), str(of), str(LIMIT_AS)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), of, cases)
    out = {}
    for name, (p, of, cases) in procs.items():
        try:
            log, _ = p.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            log, _ = p.communicate()
            pytest.fail(f"{name}: the loader subprocess ran past {TIMEOUT_S} s:\n{log.decode()[-3000:]}")
        assert p.returncode == 0 and of.exists(), f"{name}: subprocess failed ({p.returncode}):\n{log.decode()[-3000:]}"
        res = json.loads(of.read_text())
        expect = {c["id"]: c for c in cases}
        for r in res["results"]:
            r["case"] = expect[r["id"]]
        out[name] = res
    return out


def _verdict(r):
    """loaded / clean / other for one result, against what the case expects."""
    want, got = r["case"]["expect"], r["outcome"]
    if got == "other":
        return "other"
    if got == "loaded" and want == "error":
        return "other"  # a broken input that loaded
    if got == "clean" and want == "ok":
        return "other"  # a valid input that was refused
    if got == "loaded" and "kinds" in r["case"] and r["info"].get("kinds") != r["case"]["kinds"]:
        return "other"
    return got


def _check(outcomes, group, loaders, label):
    res = outcomes[group]
    rows = [r for r in res["results"] if r["loader"] in loaders]
    counts = {"loaded": 0, "clean": 0, "other": 0}
    bad = []
    for r in rows:
        v = _verdict(r)
        counts[v] += 1
        if v == "other":
            bad.append(f"  {r['loader']} {r['id']} (expected {r['case']['expect']}): {r['outcome']} "
                       f"{r.get('error', r.get('info'))}")
    slow = [f"  {r['id']}: {r['seconds']} s" for r in rows if r["seconds"] > CASE_S]
    undetectable = sum(1 for r in rows if _verdict(r) == "loaded" and r["case"]["expect"] == "either")
    print(f"\n{label}: {len(rows)} cases: loaded correctly {counts['loaded']} (of which {undetectable} bit "
          f"flips no loader can see), clean loader error {counts['clean']}, anything else {counts['other']} "
          f"(subprocess peak RSS {res['max_rss_mb']} MB)")
    assert not bad, f"{label}: {len(bad)} case(s) did not end cleanly:\n" + "\n".join(bad)
    assert not slow, f"{label}: slow cases:\n" + "\n".join(slow)
    assert res["max_rss_mb"] < MAX_RSS_MB
    assert counts["loaded"] >= 1 and counts["clean"] >= 10
    return counts


def test_cogvideox_folder_loader_hostile(outcomes):
    _check(outcomes, "cogvideox", ("metasr_load", "metasr_check", "metasr_node"),
           "CogVideoX folder loader (load / check_folder / node)")


def test_embedded_receiver_loader_hostile(outcomes):
    _check(outcomes, "tiny+metric", ("tiny", "tiny_read", "tiny_node"),
           "embedded receiver (load_embedded / read_metadata / node)")


def test_metric_weight_loader_hostile(outcomes):
    _check(outcomes, "tiny+metric", ("metric", "metric_node"), "metric weights (load_weights / Metrics node)")


# ---- in-process checks of the messages themselves --------------------------------------------------
def test_metasr_json_kinds_are_validated(tmp_path):
    from metavsr.models.receivers.cogvideox import MetaSRModelError, loading
    f = tmp_path / "metasr.json"
    f.write_text('{"metadata_kinds": "edges"}')
    with pytest.raises(MetaSRModelError, match="metasr.json.*must be a list") as e:
        loading.metadata_kinds(str(tmp_path))
    assert '["edges"]' in str(e.value)
    f.write_text('{"metadata_kinds": ["depth", "edges"], "_note": "trained 2025"}')
    assert loading.metadata_kinds(str(tmp_path)) == ("depth", "edges")
    f.write_text('{"metadata_kinds": ["edges", "edges"]}')
    with pytest.raises(MetaSRModelError, match="twice"):
        loading.metadata_kinds(str(tmp_path))
    f.write_text('{"metadata_kind": ["edges"]}')
    with pytest.raises(MetaSRModelError, match="unknown key.*metadata_kind"):
        loading.metadata_kinds(str(tmp_path))
    f.unlink()
    assert loading.metadata_kinds(str(tmp_path)) == ()


def test_mismatch_report_lists_first_keys_and_counts():
    from metavsr.models.receivers.cogvideox.loading import mismatch_report
    expected = {f"k{i}": (2, 2) for i in range(10)}
    held = {f"k{i}": ((2, 2), "F32") for i in range(5)}
    held.update({"x": ((1,), "F32"), "k5": ((3, 2), "F16"), "k6": ((2, 2), "I64")})
    rep = mismatch_report(expected, held)
    assert "3 missing (k7, k8, k9)" in rep and "1 unexpected (x)" in rep
    assert "1 with the wrong shape (k5: file [3, 2], expected [2, 2])" in rep
    assert "1 not floating point (k6: I64)" in rep
    assert mismatch_report(expected, {k: (v, "BF16") for k, v in expected.items()}) is None


@pytest.mark.parametrize("preset", ["2b", "1.5-5b"])
def test_real_cogvideox_configs_pass_the_size_checks(preset):
    """The resource checks must not refuse the published shapes: each config, with the byte and tensor
    counts its bf16 weights really have, passes; the same config with 1 % of those bytes does not."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from metavsr.models.receivers.cogvideox import MetaSRModelError, loading
    t_cfg, v_cfg, _ = configs.PRESETS[preset]
    for kind, cls, cfg in (("transformer", CogVideoXTransformer3DModel, t_cfg), ("vae", AutoencoderKLCogVideoX, v_cfg)):
        cfg = json.loads(json.dumps(cfg))  # as read from config.json (tuples become lists)
        shapes = loading._expected_state(cls, cfg, f"{kind}/config.json", 0)
        nbytes = 2 * sum(int(torch.Size(s).numel()) for s in shapes.values())
        loading._check_size(kind, cls, cfg, f"{kind}/config.json", nbytes, len(shapes), "weights")
        with pytest.raises(MetaSRModelError, match=f"{kind}/config.json describes a model of at least"):
            loading._check_size(kind, cls, cfg, f"{kind}/config.json", nbytes // 100, len(shapes), "weights")
