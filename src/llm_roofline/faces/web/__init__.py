"""The web app: a JSON API over ``analyze()`` and one page with its own assets (``llm-roofline serve``).

Needs the ``viz`` extra (FastAPI, uvicorn); import ``llm_roofline.faces.web.app`` only where it is served.
"""
