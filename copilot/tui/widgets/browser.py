"""The study browser: a filterable tree of patients, studies and series, plus skipped files.

A server's listed study shows its counts from the listing and no series until it is opened
(:meth:`StudyBrowser.replace` then adds them); one that could not be opened is marked.

One selection: the selected study's row is marked (``▶``, bold), and moving the tree's cursor
onto a study or series selects it once the cursor has rested there for
:data:`HIGHLIGHT_DELAY` seconds (so arrowing past a server's studies opens only the one the
cursor stops on). Cursor moves the app makes itself (to show the selection) select nothing.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Tree
from textual.widgets.tree import TreeNode

from copilot.study.model import Study, StudySet

StudyNode = TreeNode[tuple[Study, str | None]]

#: Seconds the cursor rests on a study before it is selected (opening one may be expensive).
HIGHLIGHT_DELAY = 0.2
#: The mark on the selected study's row.
SELECTED_MARK = "▶ "


def study_label(study: Study, failed: bool = False, selected: bool = False) -> Text:
    """A study's line in the tree: date, description and modalities (a listed study: its
    series and image counts from the server), marked when it is the selected study; header
    text is plain text, never markup."""
    label = Text(SELECTED_MARK, style="bold") if selected else Text()
    label.append(
        f"{study.study_date or '—'} {study.description or ''} [{', '.join(study.modalities)}]",
        style="bold" if selected else "",
    )
    listing = study.listing
    if listing is not None and not study.series:
        counts = [
            f"{n} {word}"
            for n, word in ((listing.series, "series"), (listing.instances, "images"))
            if n is not None
        ]
        label.append(f" · {', '.join(counts) or 'listed'}", style="dim")
    if failed:
        label.append(" · cannot open", style="bold red")
    return label


def add_series(node: StudyNode, study: Study) -> None:
    """The study's series as leaves of its node."""
    for series in study.series:
        views = f" {series.view}" if series.view else ""
        count = len(series.instances)
        text = f"{series.modality}{views} · {count} image(s) {series.description}"
        node.add_leaf(Text(text), data=(study, series.series_uid))


class StudyBrowser(Vertical):
    """Patients > studies > series; selecting a study or series posts ``StudySelected``."""

    DEFAULT_CSS = """
    StudyBrowser { width: 38; border-right: solid $primary-background; }
    StudyBrowser Input { margin: 0 0 1 0; }
    StudyBrowser Tree { height: 1fr; }
    """

    class StudySelected(Message):
        """A study (and optionally a series) was chosen."""

        def __init__(self, study: Study, series_uid: str | None) -> None:
            super().__init__()
            self.study = study
            self.series_uid = series_uid

    class StudyHighlighted(StudySelected):
        """The user's cursor rested on a study (or series) row: it is to be selected."""

    def __init__(self) -> None:
        super().__init__(id="browser")
        self.study_set: StudySet | None = None
        self.selected_uid: str | None = None
        self.failed: set[str] = set()
        #: The node the app last put the cursor on (highlighting it selects nothing: it is the
        #: selection already).
        self._placed: StudyNode | None = None
        self._rest: Timer | None = None

    def compose(self) -> ComposeResult:
        """Filter box above the tree."""
        yield Input(placeholder="Filter (patient, date, modality, description)", id="filter")
        tree: Tree[tuple[Study, str | None]] = Tree("Studies", id="tree")
        tree.show_root = False
        yield tree

    def show(self, study_set: StudySet, query: str = "") -> None:
        """(Re)build the tree; header text is shown as plain text, never markup."""
        self.study_set = study_set
        tree = self.query_one(Tree)
        tree.clear()
        q = query.lower().strip()
        patients: dict[str, list[Study]] = {}
        for study in study_set.studies:
            haystack = " ".join(
                [study.patient_id, study.study_date, study.description, *study.modalities]
            ).lower()
            if q and q not in haystack:
                continue
            patients.setdefault(study.patient_id or "(no patient id)", []).append(study)
        # Large folders open collapsed: expanding thousands of nodes costs seconds of layout.
        expand = len(patients) <= 50
        for patient, studies in patients.items():
            pnode = tree.root.add(Text(f"{patient}"), expand=expand)
            for study in studies:
                label = study_label(
                    study, study.study_uid in self.failed, study.study_uid == self.selected_uid
                )
                snode = pnode.add(label, data=(study, None), expand=True)
                add_series(snode, study)

        if self.selected_uid is not None:
            self.highlight(self.selected_uid)

    def visible_studies(self) -> list[Study]:
        """The studies in the tree (after the filter), in display order."""
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        return [
            snode.data[0]
            for pnode in tree.root.children
            for snode in pnode.children
            if snode.data is not None
        ]

    def _node(self, study_uid: str) -> StudyNode | None:
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        for pnode in tree.root.children:
            for snode in pnode.children:
                if snode.data is not None and snode.data[0].study_uid == study_uid:
                    return snode
        return None

    def replace(self, opened: Study) -> None:
        """A listed study was opened: its node holds the opened study and shows its series."""
        self.failed.discard(opened.study_uid)
        node = self._node(opened.study_uid)
        if node is None:
            return
        node.data = (opened, None)
        node.set_label(study_label(opened, selected=opened.study_uid == self.selected_uid))
        node.remove_children()
        add_series(node, opened)
        node.expand()

    def mark_failed(self, study_uid: str) -> None:
        """A listed study could not be opened: say so on its line (selecting it retries)."""
        self.failed.add(study_uid)
        node = self._node(study_uid)
        if node is not None and node.data is not None:
            node.set_label(study_label(node.data[0], True, study_uid == self.selected_uid))

    def cursor_to(self, study_uid: str) -> None:
        """Put the tree's cursor on a study without selecting it (nothing is opened)."""
        node = self._node(study_uid)
        if node is not None:
            if node.parent is not None:
                node.parent.expand()
            tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
            self._placed = node
            self.call_after_refresh(tree.move_cursor, node)

    def highlight(self, study_uid: str | None, series_uid: str | None = None) -> None:
        """Mark the study being asked about (or none) and put the tree's cursor on it (on its
        series ``series_uid`` when given), so the tree never points at another study than the
        banner names."""
        self._stop_rest()  # the app chose: a cursor resting elsewhere no longer selects
        previous, self.selected_uid = self.selected_uid, study_uid
        for uid in {previous, study_uid}:
            node = self._node(uid) if uid is not None else None
            if node is not None and node.data is not None:
                node.set_label(study_label(node.data[0], uid in self.failed, uid == study_uid))
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        snode = self._node(study_uid) if study_uid is not None else None
        if snode is None:
            self._placed = None
            self.call_after_refresh(tree.move_cursor, None)
            return
        if snode.parent is not None:
            snode.parent.expand()
        target = next((n for n in snode.children if n.data is not None and n.data[1] == series_uid), snode)
        self._placed = target
        self.call_after_refresh(tree.move_cursor, target)

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        if self.study_set is not None:
            self.show(self.study_set, event.value)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[tuple[Study, str | None]]) -> None:
        if event.node.data is not None:
            study, series_uid = event.node.data
            self.post_message(self.StudySelected(study, series_uid))

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[tuple[Study, str | None]]) -> None:
        """The user moved the cursor: select its study (or series) once the cursor rests."""
        node = event.node
        if node is self._placed or node.data is None or not self.query_one(Tree).has_focus:
            return
        self._stop_rest()
        self._rest = self.set_timer(HIGHLIGHT_DELAY, lambda: self._rested(node))

    def _stop_rest(self) -> None:
        if self._rest is not None:
            self._rest.stop()
            self._rest = None

    def _rested(self, node: StudyNode) -> None:
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        if tree.cursor_node is node and node.data is not None:
            study, series_uid = node.data
            self.post_message(self.StudyHighlighted(study, series_uid))
