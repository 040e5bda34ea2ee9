"""Choose a model per analysis: the zoo's models of that kind, or a folder the user picks; view its card."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QDialog, QFileDialog, QHBoxLayout, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from ..core.errors import Harm3Error, user_message
from ..core.models.registry import select_model, zoo_models
from ..core.models.zoo import model_readme
from ..core.vocabulary import ANALYSIS_TITLES as TITLES

NO_MODEL = "(no model in the zoo: pick a folder)"


class CardDialog(QDialog):
    """The model card (README.md) rendered as Markdown."""

    def __init__(self, title: str, markdown: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 720)
        self.browser = QTextBrowser()
        self.browser.setMarkdown(markdown)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        layout.addWidget(close)


class ModelPicker(QWidget):
    """Combo of the zoo's models of one analysis + "Folder…" + "Card"."""

    def __init__(self, analysis: str, zoo=None, parent=None):
        super().__init__(parent)
        self.analysis = analysis
        self.zoo = zoo
        self.combo = QComboBox()
        self.combo.setObjectName(f"harm3_model_{analysis}")
        self.combo.setToolTip(f"{TITLES[analysis]} model: the model zoo's, or a folder you pick")
        self.browse = QPushButton("Folder…")
        self.browse.clicked.connect(self._browse)
        self.card_button = QPushButton("Card")
        self.card_button.setToolTip("Show the model card (README.md): training data, metrics, intended use")
        self.card_button.clicked.connect(self.show_card)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse)
        layout.addWidget(self.card_button)
        self.dialog: Optional[CardDialog] = None
        self.refresh()

    def refresh(self) -> None:
        """Re-list the zoo (keeps folders the user added)."""
        added = [self.combo.itemData(i) for i in range(self.combo.count())
                 if self.combo.itemData(i) and self.combo.itemText(i).endswith("(folder)")]
        self.combo.clear()
        for model in zoo_models(self.analysis, self.zoo):
            self.combo.addItem(f"{model.name} (zoo)", str(model.path))
        for path in added:
            self.combo.addItem(f"{Path(path).name} (folder)", path)
        if self.combo.count() == 0:
            self.combo.addItem(NO_MODEL, None)
        self.card_button.setEnabled(self.folder() is not None)

    def folder(self) -> Optional[str]:
        return self.combo.currentData()

    def set_folder(self, folder) -> bool:
        """Use the model at ``folder`` (checked: a model of this analysis); False + notification if not."""
        try:
            select_model(self.analysis, folder)
        except Harm3Error as exc:
            show_error(user_message(exc, "viewer"))
            return False
        folder = str(Path(folder))
        index = self.combo.findData(folder)
        if index < 0:
            if self.combo.count() == 1 and self.combo.itemData(0) is None:
                self.combo.clear()
            self.combo.addItem(f"{Path(folder).name} (folder)", folder)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)
        self.card_button.setEnabled(True)
        return True

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Choose a {TITLES[self.analysis]} model folder")
        if folder:
            self.set_folder(folder)

    def show_card(self) -> Optional[CardDialog]:
        folder = self.folder()
        if folder is None:
            show_error(f"no {TITLES[self.analysis]} model chosen")
            return None
        try:
            text = model_readme(folder)
        except (Harm3Error, OSError) as exc:
            show_error(str(exc).splitlines()[0])
            return None
        self.dialog = CardDialog(f"Model card — {Path(folder).name}", text, self)
        self.dialog.show()
        return self.dialog
