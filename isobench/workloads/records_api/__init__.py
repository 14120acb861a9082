"""The first article's workload: FastAPI ``/records`` (see ``workload.py``)."""
