"""A procedurally generated audio-visual world: the library's built-in data set.

No real data set can be downloaded on the machines this library is built on, and readers in
Colab should not need one, so every chapter and test runs on this world by default. It is also
the stage on which the book reproduces the paper's central observation (Senocak et al., CVPR
2018, Sec. 4-5, the "pigeon superstition"): a model trained only to match sounds with images
attends to whatever co-occurs with the sound -- the rails rather than the train -- and a little
supervision fixes it (see :mod:`soundloc.experiments.pigeon`).

The world ("ground band" design)
--------------------------------
There are ``K`` sound-source classes. Class ``k`` has

- a **sound signature** (:func:`class_signature`): a harmonic tone with a class-specific pitch,
  number of harmonics and spectral tilt, a pitch glide (chirp), an amplitude rhythm, and a
  band of noise; every clip jitters pitch, timbre (harmonic amplitudes), loudness, onset and
  phase, and adds background noise (22,050 Hz, ``clip_seconds`` long);
- a **visual object** whose *shape* is the class (disk, square, triangle, plus, ring, diamond,
  cross, "H"); its colour is random, its scale, aspect, rotation (pose) and position vary;
- a **context**: a textured ground band (stripes with a class-specific orientation, spacing and
  tint -- the "railway" of the "train").

A scene (:meth:`SyntheticWorld.scene`) has a sky with a random gradient, a ground band at the
bottom, ``n_distractors`` silent objects in the background (above the band) and, in front, the
sounding object standing in the band. The band shows the sounding class ``k``'s texture with
probability ``p_k`` and a uniformly drawn *other* class's texture otherwise. The world is
*graded*: the first ``round(bound_fraction * K)`` classes are **context-bound**, ``p_k =
context_p`` (the train and its rails), the others are **free**, ``p_k = 1/K`` (the band's
texture is then uniform over the ``K`` classes and says nothing about the sound)
(:meth:`WorldConfig.class_context_p`). The silent objects'
classes are drawn uniformly from *all* ``K`` classes, independently of the sound's class: were
they always of another class (the literal reading of "distractors of other classes"), their
absence of the sounding class would itself be a cue to the sound, and a model could learn it.

The sounding object is large (``object_scale`` of the frame side, 0.5-0.7 by default), as the
sources of the real test set are: under the LVS median rule a softmax map keeps half the
pixels, so with a consensus region covering a fraction ``f`` of the frame the best reachable
cIoU is ``min(2f, 1/(2f))``; a source covering less than a quarter of the frame could never
reach cIoU 0.5 with any model. The silent objects are smaller (``distractor_scale``): they stand
farther back, behind the band. What an image shows is therefore this: the object's appearance
predicts its sound exactly, the context predicts it with probability ``context_p`` for a bound
class and not at all for a free one, the silent objects not at all. Nothing in the world says where to look; what a model attends to is learned.

As in the real data there are two other kinds of scene:

- **ambient** (probability ``ambient_p``): no sounding object; the sound is the context's own
  ambient noise (a slowly modulated noise band typical of the texture's class); the annotators
  tag it ``"ambient"`` and box the band;
- **off-screen** (probability ``offscreen_p``): the sounding class is heard but its object is
  not in view (the band still co-occurs with probability ``p_k``); such pairs have no
  annotation, like the Flickr-SoundNet pairs on which the annotators found no source.

Three simulated annotators each draw the true box with every edge moved by Gaussian noise
(``annotator_jitter`` times the box's side), in a 256×256 frame, and tag it ``"object"`` or
``"ambient"``; the consensus map and per-annotator scores work as on the real test set.

Everything is deterministic: scene ``i`` of ``SyntheticWorld(config, seed)`` is drawn from
``numpy.random.default_rng([seed, i])`` only. :class:`SyntheticDataset` serves scenes lazily (with
an in-memory cache) as the same :class:`~soundloc.data.types.Sample` objects that
:class:`~soundloc.data.dataset.AVDataset` yields, and :func:`write_world` writes them in the
prepared-data layout (:mod:`soundloc.data.layout`) so that ``AVDataset`` reads the very same
samples back.

How fast it renders is measured by ``benchmarks/bench_synthetic.py`` (``benchmarks/README.md``).

The package's modules: :mod:`~soundloc.data.synthetic.config` (:class:`WorldConfig`, the
shape and kind tables), :mod:`~soundloc.data.synthetic.sound` (signatures, clips, ambient
noise), :mod:`~soundloc.data.synthetic.drawing` (silhouettes, textures, objects),
:mod:`~soundloc.data.synthetic.world` (:class:`Scene`, :class:`SyntheticWorld`, splits,
rendering with worker processes), :mod:`~soundloc.data.synthetic.dataset`
(:class:`SyntheticDataset`, :func:`write_world`).
"""
from soundloc.data.synthetic.config import KINDS, MAX_CLASSES, SHAPES, WorldConfig
from soundloc.data.synthetic.dataset import SyntheticDataset, write_world
from soundloc.data.synthetic.drawing import shape_mask
from soundloc.data.synthetic.sound import Signature, class_signature, render_ambient, render_sound
from soundloc.data.synthetic.world import Scene, SyntheticWorld, WorldSplits, render_scenes, world_splits

__all__ = [
    "KINDS",
    "MAX_CLASSES",
    "SHAPES",
    "Scene",
    "Signature",
    "SyntheticDataset",
    "SyntheticWorld",
    "WorldConfig",
    "WorldSplits",
    "class_signature",
    "render_ambient",
    "render_scenes",
    "render_sound",
    "shape_mask",
    "world_splits",
    "write_world",
]
