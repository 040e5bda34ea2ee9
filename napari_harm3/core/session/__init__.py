"""The case session: one Qt-free, evented model of the open case (see :mod:`.session`).

The viewer's panels subscribe to it, the command line drives it, the report is exported from it.
"""

from .case_data import CaseRef, OpenedCase, SlideScale, open_case_data
from .reporting import export_report, results_text, session_report
from .runs import PredictionRun, features_root
from .session import CaseSession

__all__ = ["CaseRef", "CaseSession", "OpenedCase", "PredictionRun", "SlideScale", "export_report",
           "features_root", "open_case_data", "results_text", "session_report"]
