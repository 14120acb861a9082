"""The statistics behind every verdict, in modules of one job each.

``metrics`` (what is measured from a trial), ``estimators`` (ratio to a baseline with its CIs,
paired within rounds or unpaired), ``verdicts`` (three-way decisions, Holm, and the sentences that
say them). :mod:`isobench.analysis.stats` puts them together into one analysis and re-exports them.
"""
