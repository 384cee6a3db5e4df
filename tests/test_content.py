"""Content analysis (models/metadata/content.py) on frames whose content is known by construction:
scene cuts where the scene changes, motion equal to the pan speed, flat / colour / luma scores by
their definitions, buckets of the mixed set's renders."""
import numpy as np
import pytest

from metavsr.models.metadata import content
from metavsr.models.orchestrator import mixed_set


def test_scene_cuts_fall_where_the_scene_changes():
    page = mixed_set.text_page(96, "DejaVuSans.ttf", 12, (20, 20, 20), (235, 235, 230), 0)
    dark = mixed_set.low_light(mixed_set._crop(mixed_set._photo("coffee"), 96))
    cart = mixed_set.cartoon(96, 0)
    clip = np.stack([page, page, page, dark, dark, cart])
    assert content.scene_cuts(clip) == [0, 3, 5]
    per, segs = content.analyse(clip)
    assert [(s.start, s.stop, s.label) for s in segs] == [(0, 3, "text"), (3, 5, "low-light"), (5, 6, "flat")]
    assert per["motion"][0] == 0.0 and segs[0].scores["motion"] < 0.1
    assert "low-light" in content.table(per, segs)


def test_motion_is_the_pan_speed():
    clip = mixed_set.pan_clip(mixed_set._photo("astronaut"), 128, 4, 4.0, zoom=0.0)
    per, _ = content.analyse(clip)
    # the camera moves (4, 2) px a frame: |v| = 4.47
    assert per["motion"][1:] == pytest.approx(np.hypot(4, 2), abs=0.5)


def test_scores_by_their_definitions():
    flat = np.full((1, 64, 64, 3), 0.5, np.float32)
    flat[0, :, 32:] = [0.2, 0.6, 0.9]
    per, segs = content.analyse(flat)
    assert per["flat"][0] == 1.0 and per["colours"][0] == 2 and per["edges"][0] < 0.05
    assert per["luma"][0] == pytest.approx((0.5 * 32 + (0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 0.9) * 32) / 64, abs=0.01)
    assert per["faces"][0] == -1                      # no cascade given
    noise = np.random.default_rng(0).random((1, 64, 64, 3)).astype(np.float32)
    pn, _ = content.analyse(noise)
    assert pn["flat"][0] == 0.0 and pn["colours"][0] > 1000
    # a palette survives coding noise: 90 % of the pixels stay on few colours
    speckled = flat.copy()
    speckled[0, ::7, ::5] += 0.05
    assert content.colour_count(speckled[0]) == 2


def test_mixed_set_buckets_match_what_the_renders_are():
    seg, cat = mixed_set.mixed_set(128, 2)
    labels = {n: content.analyse(v)[1][0].label for n, v in seg.items()}
    agree = [labels[n] == cat[n] for n in seg]
    assert np.mean(agree) >= 0.8, labels
    assert all(labels[n] == "text" for n in seg if n.startswith("text-s") and "subtitle" not in n)


def test_bad_frames_and_cascades_are_named():
    with pytest.raises(ValueError, match="expected"):
        content.analyse(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="cascade"):
        content.analyse(np.zeros((1, 16, 16, 3), np.float32), cascade="/no/such.xml")
