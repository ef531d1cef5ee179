"""Experiments: the paper's studies, each a typed config, a run made of small steps, and a report.

- :mod:`soundloc.experiments.beyond`     - retrieval with the embeddings, the negative-audio test
- :mod:`soundloc.experiments.benchmark`  - a model on Flickr, VGG-SS, the extended sets and negative
  audio, beside the baselines (``soundloc benchmark``)
- :mod:`soundloc.experiments.localize`   - a trained model on a user's image/video and sound
- :mod:`soundloc.experiments.pigeon`     - the pigeon superstition on the synthetic world
- :mod:`soundloc.experiments.provenance` - what every committed result records about its run
- :mod:`soundloc.experiments.run`        - training runs on any data (``soundloc train``), resume
- :mod:`soundloc.experiments.tables`     - the paper's Tables 1-3 (``soundloc experiment``): config,
  run, report, and Table 2's pre-registered questions
"""
