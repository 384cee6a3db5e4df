"""Edge-map rate control against independent implementations (scikit-image block_reduce,
OpenCV nearest-neighbour resize, scipy labelling) and its effect on real JBIG2 bytes."""
import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.measure import block_reduce

from metavsr.models.codec import jbig2
from metavsr.models.metadata import edge_rate
from metavsr.models.metadata.canny import canny_edges


def canny_map(img, dilate=0):
    frames = np.asarray(img, np.float32)[None] / 255.0
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    return canny_edges(frames, 100, 200, dilate)[0]


@pytest.fixture(scope="module")
def edges():
    return canny_map(data.astronaut())


def test_reduce_any_is_block_maximum(edges):
    for f in (2, 4):
        for crop in (edges, edges[:509, :366]):  # also sizes that are not multiples of f
            ref = block_reduce(crop, (f, f), np.max, cval=0)
            np.testing.assert_array_equal(edge_rate.reduce(crop, f, "any"), ref)


def test_reduce_nearest_and_upscale_match_opencv(edges):
    for f in (2, 4):
        h, w = edges.shape
        small = edge_rate.reduce(edges, f, "nearest")
        np.testing.assert_array_equal(small, cv2.resize(edges, (w // f, h // f), interpolation=cv2.INTER_NEAREST))
        np.testing.assert_array_equal(edge_rate.upscale(small, f, (h, w)),
                                      cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))


def test_any_then_upscale_covers_every_edge(edges):
    crop = edges[:301, :203]
    for f in (2, 4):
        back = edge_rate.upscale(edge_rate.reduce(crop, f, "any"), f, crop.shape)
        assert back.shape == crop.shape
        assert np.all(back[crop == 1] == 1)
    with pytest.raises(ValueError, match="does not upscale"):
        edge_rate.upscale(np.zeros((10, 10), np.uint8), 2, (30, 30))
    with pytest.raises(ValueError, match="factor"):
        edge_rate.reduce(crop, 3)


def test_thinning_gives_one_pixel_lines_with_the_same_topology():
    thick = canny_map(data.coins(), dilate=1)
    thin = edge_rate.thin(thick)
    assert thin.dtype == np.uint8 and thin.shape == thick.shape
    assert np.all(thick[thin == 1] == 1)  # a subset
    assert thin.sum() < 0.6 * thick.sum()
    eight = np.ones((3, 3))
    assert ndimage.label(thin, eight)[1] == ndimage.label(thick, eight)[1]  # no line broken or lost
    # one pixel wide: 2x2 all-edge blocks survive only where lines cross (topology), < 1 %
    blocks = thin[:-1, :-1] & thin[1:, :-1] & thin[:-1, 1:] & thin[1:, 1:]
    thick_blocks = thick[:-1, :-1] & thick[1:, :-1] & thick[:-1, 1:] & thick[1:, 1:]
    assert blocks.sum() < 0.01 * thin.sum() < thick_blocks.sum()
    np.testing.assert_array_equal(edge_rate.thin(thin), thin)  # idempotent
    bar = np.zeros((40, 60), np.uint8)
    bar[10:17, 5:55] = 1
    assert (edge_rate.thin(bar).sum(axis=0)[8:52] == 1).all()  # a 7-pixel bar becomes a line


def test_each_knob_lowers_the_jbig2_rate():
    thick = canny_map(data.coffee(), dilate=1)
    size = lambda m: len(jbig2.encode(m, auto=True))  # noqa: E731
    full = size(thick)
    assert size(edge_rate.prepare(thick, thinning=True)) < full
    assert size(edge_rate.prepare(thick, factor=2)) < full
    assert size(edge_rate.prepare(thick, factor=4)) < size(edge_rate.prepare(thick, factor=2))


def test_batch_shapes(edges):
    batch = np.stack([edges, 1 - edges])
    assert edge_rate.prepare(batch, thinning=True, factor=2).shape == (2, 256, 256)
    assert edge_rate.prepare(edges, factor=4).shape == (128, 128)
