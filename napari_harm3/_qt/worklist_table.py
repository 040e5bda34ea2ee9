"""The worklist's Qt table: a thin model over :class:`~napari_harm3.core.cohort.worklist.Worklist`
and a proxy whose filter and sort are the core's (``core/cohort/worklist_filters.py``)."""

from __future__ import annotations

from qtpy.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QTableView

from ..core.cohort.worklist_filters import COLUMNS, parse_query, sort_value

CASE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_PROBLEM = QBrush(QColor("#e06c50"))
_NO_PARENT = QModelIndex()
_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class WorklistTable(QTableView):
    """The table; Enter (or Return) emits :attr:`enter_pressed` (opens the selected case)."""

    enter_pressed = Signal()

    def keyPressEvent(self, event) -> None:
        if event.key() in _ENTER_KEYS and not event.modifiers():
            self.enter_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class WorklistModel(QAbstractTableModel):
    """One row per case of the worklist, in the cohort table's order; columns: ``COLUMNS``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worklist = None
        self._ids: list = []

    def set_worklist(self, worklist) -> None:
        self.beginResetModel()
        self.worklist = worklist
        self._ids = [] if worklist is None else worklist.case_ids
        self.endResetModel()

    def row_at(self, index: int):
        return self.worklist.row(self._ids[index])

    def case_changed(self, case_id: str) -> None:
        """The core row of ``case_id`` changed: repaint that row (found by id, never by position)."""
        if case_id in self._ids:
            r = self._ids.index(case_id)
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))

    def rowCount(self, parent=_NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=_NO_PARENT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.row_at(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[index.column()].text(row)
        if role == CASE_ID_ROLE:
            return row.case_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(row.problems) or None
        if role == Qt.ItemDataRole.ForegroundRole and row.problems:
            return _PROBLEM
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section].title
        return None


class WorklistProxy(QSortFilterProxyModel):
    """Filter = the core's query; sort = the core's sort keys (missing values last both ways)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.query = ""
        self._keep = parse_query("")

    def set_query(self, query: str) -> None:
        self.query = query
        self._keep = parse_query(query)
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row, source_parent) -> bool:
        return bool(self._keep(self.sourceModel().row_at(source_row)))

    def lessThan(self, left, right) -> bool:
        key = COLUMNS[left.column()].key
        descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
        model = self.sourceModel()
        a = sort_value(model.row_at(left.row()), key, descending)
        b = sort_value(model.row_at(right.row()), key, descending)
        if a == b:
            return left.row() < right.row() if not descending else left.row() > right.row()
        return a < b

    def case_ids(self) -> list:
        """The case ids as the table shows them (filtered, sorted): what Next / Previous follow."""
        return [self.index(r, 0).data(CASE_ID_ROLE) for r in range(self.rowCount())]

    def proxy_row_of(self, case_id: str) -> int:
        ids = self.case_ids()
        return ids.index(case_id) if case_id in ids else -1
