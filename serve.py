"""Start the app: `python serve.py [streamlit options]`, the same as `streamlit run dashboard.py [options]`, except
that a shared link to a page (/sales, /glossary) opens without Streamlit's "Page not found" notice even as the
first request after a start.

Streamlit treats an app with a `pages/` folder as an old-style multipage app until some run has called
st.navigation, so the very first visitor of a deep link got that notice. Starting Streamlit from here tells it,
before any visitor, that dashboard.py's st.navigation does the routing.

It listens on this machine only (127.0.0.1) unless told otherwise, e.g. `python serve.py --server.address 0.0.0.0`
to serve the office network (set an editor password or a login first: README, "Roles and login").
"""
from __future__ import annotations

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

ROUTER = Path(__file__).resolve().parent / "dashboard.py"

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False  # the routes are dashboard.py's st.navigation, from the first run
    given = sys.argv[1:]
    local = [] if any(a.startswith("--server.address") for a in given) else ["--server.address", "127.0.0.1"]
    sys.argv = ["streamlit", "run", str(ROUTER), *local, *given]
    sys.exit(cli.main())
