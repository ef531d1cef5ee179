"""Evaluation of sound source localization (Senocak et al., CVPR 2018, Sec. 5).

The community's protocol (the LVS evaluation code, CVPR 2021) is the default everywhere:

- :mod:`~soundloc.metrics.protocol`    - :class:`Protocol` (every choice) and the named variants
- :mod:`~soundloc.metrics.groundtruth` - box maps, the consensus map ``g``, annotation scaling
- :mod:`~soundloc.metrics.prediction`  - resize, min-max normalise, threshold: the set ``A``
- :mod:`~soundloc.metrics.scores`      - cIoU, success rate, AUC, per-annotator IoU (Table 3)
- :mod:`~soundloc.metrics.baselines`   - whole image, centre prior, random maps
- :mod:`~soundloc.metrics.regions`     - attention mass and density on a region (where attention goes)
- :mod:`~soundloc.metrics.retrieval`   - recall@K and median rank of a cross-modal retrieval
- :mod:`~soundloc.metrics.openset`     - the extended (open-set) protocol: AP, max-F1, precision by size
- :mod:`~soundloc.metrics.report`      - :func:`evaluate` and :func:`format_table`

Every submodule's public names are also importable from :mod:`soundloc.metrics` itself.
"""
from soundloc.metrics import baselines, groundtruth, openset, prediction, protocol, regions, report, retrieval, scores
from soundloc.metrics.baselines import *  # noqa: F403
from soundloc.metrics.groundtruth import *  # noqa: F403
from soundloc.metrics.openset import *  # noqa: F403
from soundloc.metrics.prediction import *  # noqa: F403
from soundloc.metrics.protocol import *  # noqa: F403
from soundloc.metrics.regions import *  # noqa: F403
from soundloc.metrics.report import *  # noqa: F403
from soundloc.metrics.retrieval import *  # noqa: F403
from soundloc.metrics.scores import *  # noqa: F403

__all__ = [*baselines.__all__, *groundtruth.__all__, *openset.__all__, *prediction.__all__, *protocol.__all__,
           *regions.__all__, *report.__all__, *retrieval.__all__, *scores.__all__]
