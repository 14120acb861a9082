"""isobench's built-in HTTP load engine (k6 semantics, uvloop + httptools, HDR histograms).

Entry points: :func:`isobench.load.api.run_load` (runs the engine in a pinned subprocess) and
``python -m isobench.load`` (the subprocess itself; also usable by hand).
"""
