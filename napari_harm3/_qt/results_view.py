"""Results of the model runs: copyable text and the survival curve S(t) (matplotlib in Qt).

``ResultsView.show_session(session)`` shows every number the case session holds (its
``results_text``, the same words as the command line) in a read-only box with a *Copy* button,
and draws S(t) against months with the fold band and the risk group.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QApplication, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class ResultsView(QWidget):
    """Read-only results text + copy button + survival curve."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("harm3_results")
        self.summary = QLabel("No results yet: run a model.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-weight: bold;")
        self.text = QPlainTextEdit()
        self.text.setObjectName("harm3_results_text")
        self.text.setReadOnly(True)
        self.text.setMinimumHeight(120)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy all numbers to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        # fixed margins, not tight_layout: its text measurements took ~70 ms of every redraw,
        # on the GUI thread (issue 15); these fit the title, labels and ticks drawn here
        self.figure = Figure(figsize=(3.2, 2.2))
        self.figure.subplots_adjust(left=0.15, right=0.97, bottom=0.2, top=0.88)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.canvas.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.canvas)
        row = QHBoxLayout()
        row.addWidget(QLabel("All numbers (copyable):"))
        row.addStretch(1)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        layout.addWidget(self.text, 1)

    def show_session(self, session, notes=()) -> str:
        """Show the session's results (nothing but the open case's)."""
        pcr, survival = session.prediction("pcr"), session.prediction("survival")
        text = session.results_text(notes)
        self.text.setPlainText(text)
        parts = []
        if pcr is not None:
            parts.append(f"p(pCR) {pcr.probability:.2f} ± {pcr.spread:.2f}: {pcr.verdict()}"
                         + (f" — missing: {', '.join(pcr.missing_inputs)}" if pcr.missing_inputs else ""))
        if survival is not None:
            where = f", {survival.risk_percentile:.0f}th percentile" if survival.risk_percentile is not None else ""
            parts.append(f"risk {survival.risk:.2f} ({survival.risk_group or 'group unknown'} risk{where})")
        self.summary.setText(" · ".join(parts) or "No results yet: run a model.")
        self.plot_survival(survival)
        return text

    def plot_survival(self, survival) -> None:
        self.figure.clear()
        if survival is None:
            self.canvas.setVisible(False)
            return
        ax = self.figure.add_subplot(111)
        months, curve = survival.months, survival.survival_curve
        ax.fill_between(months, survival.survival_low, survival.survival_high, step="post", alpha=0.25,
                        color="tab:blue", label="fold range")
        ax.step(months, curve, where="post", color="tab:blue", label="S(t), ensemble mean")
        if survival.t_max_months is not None and survival.t_max_months > months[-1]:
            ax.hlines(curve[-1], months[-1], survival.t_max_months, colors="tab:blue", linestyles="dotted")
        group = survival.risk_group
        title = f"{survival.case_id}: {group} risk" if group else f"{survival.case_id}: risk group unknown"
        if survival.risk_threshold is not None:
            title += f" (risk {survival.risk:.2f} vs cohort median {survival.risk_threshold:.2f})"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("months", fontsize=8)
        ax.set_ylabel("S(t)", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower left")
        self.canvas.setVisible(True)
        self.canvas.draw_idle()

    def copy(self) -> str:
        text = self.text.toPlainText()
        QApplication.clipboard().setText(text)
        return text
