"""Small helpers the whole library shares, one module per concern:

- :mod:`~soundloc.utils.seeding`  - seeding, and the global random states a checkpoint saves
- :mod:`~soundloc.utils.files`    - atomic writes, JSON and torch files read with clear errors
- :mod:`~soundloc.utils.device`   - the default device
- :mod:`~soundloc.utils.progress` - tqdm progress bars that never change a loop's numbers
- :mod:`~soundloc.utils.summary`  - mean ± sample std over runs, and its format
"""
