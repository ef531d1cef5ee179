"""The paper's Tables 1-3 (Senocak et al., CVPR 2018) at a scale that fits the machine
(``soundloc experiment``): a typed config, a run made of training runs, and a report.

- :mod:`~soundloc.experiments.tables.config` - the rows, the scales, :class:`TableConfig`
- :mod:`~soundloc.experiments.tables.run`    - :func:`run_table`: every row a training run, every seed
- :mod:`~soundloc.experiments.tables.report` - Markdown/CSV beside the paper, provenance, the chart
- :mod:`~soundloc.experiments.tables.table2` - Table 2's pre-registered questions over seeds
"""
from soundloc.experiments.tables.config import (BASELINES, MECHANISM_LABEL, MECHANISM_SHORT, PAPER_RANDOM, TABLES, Row,
                                                TableConfig, TableScale, table_config)
from soundloc.experiments.tables.report import (against_centre_prior, csv_table, describe_streams, describe_world,
                                                find_table_results, format_provenance, load_table, localization_check,
                                                localization_markdown, markdown_table, plot_table, table_provenance,
                                                table_world, write_provenance)
from soundloc.experiments.tables.run import check_table, check_table_folder, run_table

__all__ = ["BASELINES", "MECHANISM_LABEL", "MECHANISM_SHORT", "PAPER_RANDOM", "TABLES", "Row", "TableConfig",
           "TableScale", "against_centre_prior", "check_table", "check_table_folder", "csv_table", "describe_streams",
           "describe_world", "find_table_results", "format_provenance", "load_table", "localization_check",
           "localization_markdown", "markdown_table", "plot_table", "run_table", "table_config", "table_provenance",
           "table_world", "write_provenance"]
