"""The CD-PD analysis, in the order of the method.

- :mod:`~nlp.analysis.tables`: aggregation of the workspace's tags into contingency tables and trends;
- :mod:`~nlp.analysis.ca`: correspondence analysis, bootstrap ellipses and MDS;
- :mod:`~nlp.analysis.sides`: the two sides a convergence reading compares, stated and described;
- :mod:`~nlp.analysis.units`: per-document data in a unit (documents, passages, intensity), diplomatic units or all;
- :mod:`~nlp.analysis.convergence`: the convergence reading with bootstrap intervals (statistics, no plotting);
- :mod:`~nlp.analysis.figures`: plotly and matplotlib figures;
- :mod:`~nlp.analysis.report`: the HTML report and file exports;
- :mod:`~nlp.analysis.diagram`: the whole diagram of a workspace in one call (what the CLI and the app call).

Submodules are imported on use: ``cdpd classify`` never pays for pandas or plotting.
"""
