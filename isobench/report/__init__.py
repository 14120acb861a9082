"""Reports of a run directory: terminal table, self-contained HTML + SVG plots, CSV/JSON, compare.

Entry points::

    print_comparison(console, analysis, manifest)     # terminal.py
    write_html(run_dir) -> Path                        # html.py (report.html)
    write_csv(run_dir) -> list[Path]; write_json(run_dir) -> Path   # export.py
    compare_runs(run_a, run_b) -> dict; print_run_comparison(console, result)   # compare.py
"""
